//! The AWS IoT SQL lexer: turns statement text into tokens, each with the byte offset it
//! starts at so the parser's errors can point at it.
//!
//! Strings may be single- or double-quoted (AWS accepts both as literals; a doubled quote or
//! a backslash escapes). Backquotes quote a field name that would otherwise be a keyword.
//! Keywords are recognised by the parser, case-insensitively, from plain identifiers.

use super::SqlError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// A back-quoted field name: never a keyword.
    Quoted(String),
    Str(String),
    Int(i64),
    Decimal(f64),
    Star,
    Comma,
    Dot,
    Colon,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Plus,
    Minus,
    Slash,
    Percent,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

impl Tok {
    /// How an error message names the token.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Quoted(s) => format!("`{s}`"),
            Tok::Str(s) => format!("the string '{s}'"),
            Tok::Int(i) => format!("the number {i}"),
            Tok::Decimal(d) => format!("the number {d}"),
            Tok::Eof => "the end of the statement".into(),
            other => format!("'{}'", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::Star => "*",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Colon => ":",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Eq => "=",
            Tok::Ne => "<>",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            _ => "?",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    /// Byte offset of the token's first character.
    pub at: usize,
}

pub fn lex(src: &str) -> Result<Vec<Token>, SqlError> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let at = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let single = |t: Tok| Token { tok: t, at };
        let (tok, len) = match c {
            b'*' => (Tok::Star, 1),
            b',' => (Tok::Comma, 1),
            b':' => (Tok::Colon, 1),
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'[' => (Tok::LBracket, 1),
            b']' => (Tok::RBracket, 1),
            b'{' => (Tok::LBrace, 1),
            b'}' => (Tok::RBrace, 1),
            b'+' => (Tok::Plus, 1),
            b'-' => (Tok::Minus, 1),
            b'/' => (Tok::Slash, 1),
            b'%' => (Tok::Percent, 1),
            b'=' => (Tok::Eq, 1),
            b'!' if bytes.get(i + 1) == Some(&b'=') => (Tok::Ne, 2),
            b'<' => match bytes.get(i + 1) {
                Some(b'>') => (Tok::Ne, 2),
                Some(b'=') => (Tok::Le, 2),
                _ => (Tok::Lt, 1),
            },
            b'>' => match bytes.get(i + 1) {
                Some(b'=') => (Tok::Ge, 2),
                _ => (Tok::Gt, 1),
            },
            // After a name, `a.0` is member access, not the number `.0`.
            b'.' if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                || matches!(
                    tokens.last().map(|t: &Token| &t.tok),
                    Some(Tok::Ident(_) | Tok::Quoted(_) | Tok::RParen | Tok::RBracket)
                ) =>
            {
                (Tok::Dot, 1)
            }
            b'\'' | b'"' => {
                let (text, end) = string(src, i)?;
                tokens.push(single(Tok::Str(text)));
                i = end;
                continue;
            }
            b'`' => {
                let Some(close) = src[i + 1..].find('`') else {
                    return Err(SqlError::at(src, at, "unterminated back-quoted name"));
                };
                let name = &src[i + 1..i + 1 + close];
                if name.is_empty() {
                    return Err(SqlError::at(src, at, "empty back-quoted name"));
                }
                tokens.push(single(Tok::Quoted(name.to_string())));
                i += close + 2;
                continue;
            }
            b'0'..=b'9' | b'.' => {
                let (tok, end) = number(src, i)?;
                tokens.push(single(tok));
                i = end;
                continue;
            }
            c if c == b'_' || c == b'$' || c.is_ascii_alphabetic() => {
                let end = src[i..]
                    .find(|ch: char| !(ch == '_' || ch == '$' || ch.is_ascii_alphanumeric()))
                    .map_or(src.len(), |n| i + n);
                tokens.push(single(Tok::Ident(src[i..end].to_string())));
                i = end;
                continue;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(SqlError::at(
                    src,
                    at,
                    format!("unexpected character '{ch}'"),
                ));
            }
        };
        tokens.push(single(tok));
        i += len;
    }
    tokens.push(Token {
        tok: Tok::Eof,
        at: src.len(),
    });
    Ok(tokens)
}

/// A quoted string starting at `start`; returns its text and the offset after it.
fn string(src: &str, start: usize) -> Result<(String, usize), SqlError> {
    let quote = src.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices().peekable();
    while let Some((n, ch)) = chars.next() {
        let here = start + 1 + n;
        if ch == quote {
            if chars.peek().map(|&(_, c)| c) == Some(quote) {
                chars.next();
                out.push(quote);
                continue;
            }
            return Ok((out, here + 1));
        }
        if ch == '\\' {
            let Some((_, esc)) = chars.next() else { break };
            out.push(match esc {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                other => other,
            });
            continue;
        }
        out.push(ch);
    }
    Err(SqlError::at(src, start, "unterminated string"))
}

fn number(src: &str, start: usize) -> Result<(Tok, usize), SqlError> {
    let bytes = src.as_bytes();
    let mut i = start;
    let mut decimal = false;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    if i < bytes.len() && bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        decimal = true;
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        if j < bytes.len() && bytes[j].is_ascii_digit() {
            decimal = true;
            i = j;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    let text = &src[start..i];
    if !decimal && let Ok(n) = text.parse::<i64>() {
        return Ok((Tok::Int(n), i));
    }
    match text.parse::<f64>() {
        Ok(d) if d.is_finite() => Ok((Tok::Decimal(d), i)),
        _ => Err(SqlError::at(
            src,
            start,
            format!("'{text}' is not a valid number"),
        )),
    }
}
