//! A small, honest reader for Prosody configuration files: enough Lua to get the TURN
//! settings out of the fragment `ferroturn jitsi init` writes and out of the forms people
//! write by hand.
//!
//! Understood: `name = value` statements with string (`"…"`, `'…'`, `[[…]]`), number,
//! boolean, `nil` and table values (nested, `name = v`, `["name"] = v` and positional fields,
//! `,` or `;` separators); `--` and `--[[ … ]]` comments; `VirtualHost "name"` and
//! `Component "name" "module"` section lines (settings after them belong to that host).
//!
//! Not understood, reported as notes and skipped: expressions (`"a" .. b`, arithmetic),
//! variables, function calls such as `os.getenv("X")`, `Include "file"`, `local` and any
//! other Lua statement. A value built that way is reported as "not a literal" rather than
//! guessed.

/// A value as read.
#[derive(Debug, Clone, PartialEq)]
pub enum LuaValue {
    /// A string literal.
    Str(String),
    /// A number literal.
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
    /// Something this reader does not evaluate; the text says what it started with.
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

/// One `name = value` statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The setting's name.
    pub name: String,
    /// Its value.
    pub value: LuaValue,
    /// The `VirtualHost`/`Component` it was set under; `None` = global.
    pub section: Option<String>,
    /// 1-based line of the name.
    pub line: usize,
}

/// What was read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LuaConfig {
    /// Every setting, in file order.
    pub settings: Vec<Setting>,
    /// Statements that were skipped, with their line.
    pub notes: Vec<String>,
}

impl LuaConfig {
    /// The last setting named `name`, wherever it was set.
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
    Other(char),
}

fn tokenize(text: &str) -> (Vec<(Tok, usize)>, Vec<String>) {
    let b: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut notes = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '-' && b.get(i + 1) == Some(&'-') {
            i += 2;
            if let Some(level) = long_bracket_level(&b, i) {
                let (_, end, lines) = read_long(&b, i, level);
                line += lines;
                i = end;
            } else {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
        } else if c == '"' || c == '\'' {
            let start_line = line;
            let mut s = String::new();
            i += 1;
            let mut closed = false;
            while i < b.len() {
                let ch = b[i];
                i += 1;
                if ch == c {
                    closed = true;
                    break;
                }
                if ch == '\n' {
                    line += 1;
                    break;
                }
                if ch == '\\' && i < b.len() {
                    let e = b[i];
                    i += 1;
                    match e {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'r' => s.push('\r'),
                        '0' => s.push('\0'),
                        '\n' => {
                            line += 1;
                            s.push('\n')
                        }
                        other => s.push(other),
                    }
                } else {
                    s.push(ch);
                }
            }
            if !closed {
                notes.push(format!("line {start_line}: unterminated string"));
            }
            toks.push((Tok::Str(s), start_line));
        } else if c == '[' && long_bracket_level(&b, i).is_some() {
            let level = long_bracket_level(&b, i).unwrap_or(0);
            let start_line = line;
            let (s, end, lines) = read_long(&b, i, level);
            line += lines;
            i = end;
            toks.push((Tok::Str(s), start_line));
        } else if c.is_ascii_digit()
            || (c == '.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '.') {
                i += 1;
            }
            let text: String = b[start..i].iter().collect();
            let n = text
                .strip_prefix("0x")
                .or_else(|| text.strip_prefix("0X"))
                .and_then(|h| i64::from_str_radix(h, 16).ok())
                .map(|v| v as f64)
                .or_else(|| text.parse::<f64>().ok());
            match n {
                Some(n) => toks.push((Tok::Num(n), line)),
                None => toks.push((Tok::Other('0'), line)),
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            toks.push((Tok::Name(b[start..i].iter().collect()), line));
        } else {
            let sym = match c {
                '=' if b.get(i + 1) == Some(&'=') => Some("=="),
                '.' if b.get(i + 1) == Some(&'.') => Some(".."),
                '=' => Some("="),
                '{' => Some("{"),
                '}' => Some("}"),
                '[' => Some("["),
                ']' => Some("]"),
                '(' => Some("("),
                ')' => Some(")"),
                ',' => Some(","),
                ';' => Some(";"),
                _ => None,
            };
            match sym {
                Some(s) => {
                    i += s.len();
                    toks.push((Tok::Sym(s), line));
                }
                None => {
                    i += 1;
                    toks.push((Tok::Other(c), line));
                }
            }
        }
    }
    (toks, notes)
}

/// `[[`, `[=[`, ... at `i`: the number of `=`.
fn long_bracket_level(b: &[char], i: usize) -> Option<usize> {
    if b.get(i) != Some(&'[') {
        return None;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&'=') {
        j += 1;
    }
    (b.get(j) == Some(&'[')).then_some(j - i - 1)
}

/// Reads a long bracket starting at `i`: (content, index after it, newlines inside).
fn read_long(b: &[char], i: usize, level: usize) -> (String, usize, usize) {
    let mut j = i + level + 2;
    let close: Vec<char> = std::iter::once(']')
        .chain(std::iter::repeat_n('=', level))
        .chain(std::iter::once(']'))
        .collect();
    let start = j;
    while j < b.len() {
        if b[j..].starts_with(&close) {
            let s: String = b[start..j].iter().collect();
            let lines = s.matches('\n').count();
            return (s, j + close.len(), lines);
        }
        j += 1;
    }
    let s: String = b[start..].iter().collect();
    let lines = s.matches('\n').count();
    (s, b.len(), lines)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|(t, _)| t)
    }
    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(0, |(_, l)| *l)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    /// Skips the rest of a statement that is not understood: to the first token on a later
    /// line outside any bracket.
    fn skip_statement(&mut self, from_line: usize) {
        let mut depth = 0i32;
        while let Some((t, l)) = self.toks.get(self.pos) {
            if depth <= 0 && *l > from_line {
                break;
            }
            match t {
                Tok::Sym("{") | Tok::Sym("(") | Tok::Sym("[") => depth += 1,
                Tok::Sym("}") | Tok::Sym(")") | Tok::Sym("]") => depth -= 1,
                _ => {}
            }
            self.pos += 1;
        }
    }

    fn value(&mut self) -> LuaValue {
        let v = match self.next() {
            Some(Tok::Str(s)) => LuaValue::Str(s),
            Some(Tok::Num(n)) => LuaValue::Num(n),
            Some(Tok::Name(n)) if n == "true" => LuaValue::Bool(true),
            Some(Tok::Name(n)) if n == "false" => LuaValue::Bool(false),
            Some(Tok::Name(n)) if n == "nil" => LuaValue::Nil,
            Some(Tok::Sym("{")) => self.table(),
            Some(Tok::Name(n)) => {
                self.skip_expression();
                return LuaValue::Unknown(format!("expression starting with `{n}`"));
            }
            Some(other) => {
                self.skip_expression();
                return LuaValue::Unknown(format!("expression starting with {other:?}"));
            }
            None => LuaValue::Unknown("nothing".into()),
        };
        // `"a" .. b`, `1 + 2`, `x(…)`: an expression, not a literal.
        match self.peek() {
            Some(Tok::Sym("..")) | Some(Tok::Other(_)) | Some(Tok::Sym("("))
            | Some(Tok::Sym("==")) => {
                self.skip_expression();
                LuaValue::Unknown("an expression (`..`, an operator or a call)".into())
            }
            _ => v,
        }
    }

    /// Skips tokens up to the end of the current value: a `,`/`;`/`}` at depth 0, or a new
    /// statement (`name =`) at depth 0.
    fn skip_expression(&mut self) {
        let mut depth = 0i32;
        while let Some(t) = self.peek() {
            // A token on a new line after one that cannot continue an expression starts the
            // next statement.
            if depth == 0 && self.pos > 0 {
                let (prev, prev_line) = &self.toks[self.pos - 1];
                let continues = matches!(
                    prev,
                    Tok::Sym("..") | Tok::Sym("(") | Tok::Sym("=") | Tok::Sym("==") | Tok::Other(_)
                );
                if self.line() > *prev_line && !continues {
                    return;
                }
            }
            match t {
                Tok::Sym("{") | Tok::Sym("(") | Tok::Sym("[") => depth += 1,
                Tok::Sym("}") | Tok::Sym(")") | Tok::Sym("]") => {
                    if depth == 0 {
                        return;
                    }
                    depth -= 1
                }
                Tok::Sym(",") | Tok::Sym(";") if depth == 0 => return,
                Tok::Name(_) if depth == 0 && self.peek_at(1) == Some(&Tok::Sym("=")) => return,
                _ => {}
            }
            self.pos += 1;
        }
    }

    fn table(&mut self) -> LuaValue {
        let mut fields = Vec::new();
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some(Tok::Sym("}")) => {
                    self.pos += 1;
                    break;
                }
                Some(Tok::Sym(",")) | Some(Tok::Sym(";")) => {
                    self.pos += 1;
                }
                Some(Tok::Name(n)) if self.peek_at(1) == Some(&Tok::Sym("=")) => {
                    let n = n.clone();
                    self.pos += 2;
                    let v = self.value();
                    fields.push((n, v));
                }
                Some(Tok::Sym("["))
                    if matches!(self.peek_at(1), Some(Tok::Str(_)))
                        && self.peek_at(2) == Some(&Tok::Sym("]"))
                        && self.peek_at(3) == Some(&Tok::Sym("=")) =>
                {
                    let key = match self.peek_at(1) {
                        Some(Tok::Str(s)) => s.clone(),
                        _ => String::new(),
                    };
                    self.pos += 4;
                    let v = self.value();
                    fields.push((key, v));
                }
                Some(_) => {
                    let before = self.pos;
                    let v = self.value();
                    items.push(v);
                    if self.pos == before {
                        self.pos += 1;
                    }
                }
            }
        }
        LuaValue::Table { fields, items }
    }
}

/// Reads `text`.
pub fn parse(text: &str) -> LuaConfig {
    let (toks, mut notes) = tokenize(text);
    let mut p = Parser { toks, pos: 0 };
    let mut settings = Vec::new();
    let mut section: Option<String> = None;
    while let Some(tok) = p.peek().cloned() {
        let line = p.line();
        match tok {
            Tok::Sym(";") => {
                p.pos += 1;
            }
            Tok::Name(ref n) if n == "VirtualHost" || n == "Component" => {
                p.pos += 1;
                if p.peek() == Some(&Tok::Sym("(")) {
                    p.pos += 1;
                }
                match p.next() {
                    Some(Tok::Str(name)) => section = Some(name),
                    _ => notes.push(format!("line {line}: {n} without a quoted name; skipped")),
                }
                p.skip_statement(line);
            }
            Tok::Name(name) if p.peek_at(1) == Some(&Tok::Sym("=")) => {
                p.pos += 2;
                let value = p.value();
                if let LuaValue::Unknown(what) = &value {
                    notes.push(format!(
                        "line {line}: `{name}` is set to {what}, which this reader does not evaluate"
                    ));
                }
                settings.push(Setting {
                    name,
                    value,
                    section: section.clone(),
                    line,
                });
            }
            Tok::Name(n) => {
                notes.push(format!(
                    "line {line}: statement starting with `{n}` not understood; skipped"
                ));
                p.pos += 1;
                p.skip_statement(line);
            }
            other => {
                notes.push(format!("line {line}: unexpected {other:?}; skipped"));
                p.pos += 1;
                p.skip_statement(line);
            }
        }
    }
    LuaConfig { settings, notes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_settings_tables_and_sections() {
        let cfg = parse(
            "-- a comment\n\
             admins = { \"focus@auth.meet\" }\n\
             --[[ block\n comment ]]\n\
             VirtualHost \"meet.example.org\"\n\
             \tauthentication = 'internal_hashed'\n\
             \texternal_service_secret = \"s3cret\";\n\
             \texternal_services = {\n\
             \t\t{ type = \"turn\", host = \"h\", port = 3478, transport = \"udp\", secret = true },\n\
             \t\t{ [\"type\"] = \"turns\"; host = [[h2]]; port = 0x14e5 };\n\
             \t}\n\
             Component \"muc.meet.example.org\" \"muc\"\n\
             \tstorage = \"memory\"\n",
        );
        assert!(cfg.notes.is_empty(), "{:?}", cfg.notes);
        let s = cfg.get("external_service_secret").unwrap();
        assert_eq!(s.value, LuaValue::Str("s3cret".into()));
        assert_eq!(s.section.as_deref(), Some("meet.example.org"));
        assert_eq!(s.line, 7);
        let LuaValue::Table { items, .. } = &cfg.get("external_services").unwrap().value else {
            panic!("not a table")
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].field("port"), Some(&LuaValue::Num(3478.0)));
        assert_eq!(items[0].field("secret"), Some(&LuaValue::Bool(true)));
        assert_eq!(items[1].field("type"), Some(&LuaValue::Str("turns".into())));
        assert_eq!(items[1].field("host"), Some(&LuaValue::Str("h2".into())));
        assert_eq!(items[1].field("port"), Some(&LuaValue::Num(5349.0)));
        assert_eq!(
            cfg.get("storage").unwrap().section.as_deref(),
            Some("muc.meet.example.org")
        );
    }

    #[test]
    fn expressions_and_unknown_statements_become_notes() {
        let cfg = parse(
            "external_service_secret = os.getenv(\"TURN_SECRET\")\n\
             Include \"conf.d/*.cfg.lua\"\n\
             local x = 1\n\
             external_service_host = \"a\" .. \"b\"\n\
             external_service_port = 3478\n",
        );
        assert!(matches!(
            cfg.get("external_service_secret").unwrap().value,
            LuaValue::Unknown(_)
        ));
        assert!(matches!(
            cfg.get("external_service_host").unwrap().value,
            LuaValue::Unknown(_)
        ));
        assert_eq!(
            cfg.get("external_service_port").unwrap().value,
            LuaValue::Num(3478.0)
        );
        assert_eq!(cfg.notes.len(), 4, "{:?}", cfg.notes);
        assert!(cfg
            .notes
            .iter()
            .any(|n| n.contains("line 2") && n.contains("Include")));
    }

    #[test]
    fn garbage_does_not_panic() {
        for text in [
            "{",
            "x = {",
            "= = =",
            "\"unterminated",
            "[[",
            "x = [==[ a ]==]",
            "}}}",
            "a.b = 1",
        ] {
            let _ = parse(text);
        }
    }
}
