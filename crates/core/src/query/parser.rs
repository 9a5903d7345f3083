//! The fleet-index query parser: a hand-written lexer and recursive-descent parser.
//!
//! Hand-written because the grammar is small (about fifteen productions) and because callers
//! need AWS-style errors that point at a position and say what was expected; a combinator
//! library would cost more than it saves here. Precedence, loosest first: `OR`, then `AND`
//! (explicit or implicit between adjacent clauses), then `NOT`/`-`. Keywords are upper case,
//! as in Lucene, so `and` is an ordinary word. The parser checks syntax only; whether a value
//! suits its field's type is `eval::check`'s job, since types come from the indexing
//! configuration.

use super::ast::*;
use super::limits::*;

/// A query that cannot be parsed or used, with the 0-based character offset it refers to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Syntax error at position {}: {message}", .offset + 1)]
pub struct QueryError {
    pub offset: usize,
    pub message: String,
}

impl QueryError {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> Self {
        Self {
            offset,
            message: message.into(),
        }
    }
}

/// A parsed query plus the offset of each term, in the order a depth-first walk visits them,
/// so later checks can point at the term they reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub query: Query,
    pub term_offsets: Vec<usize>,
}

/// Parses `text` into a query.
pub fn parse(text: &str) -> Result<Parsed, QueryError> {
    let length = text.chars().count();
    if length > MAX_QUERY_CHARS {
        return Err(QueryError::new(
            MAX_QUERY_CHARS,
            format!("the query is {length} characters long; the maximum is {MAX_QUERY_CHARS}"),
        ));
    }
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return Err(QueryError::new(0, "the query is empty"));
    }
    let mut parser = Parser {
        tokens,
        next: 0,
        end: length,
        terms: Vec::new(),
        leading_wildcards: 0,
    };
    let query = parser.or(None)?;
    if let Some(token) = parser.peek() {
        let message = match token.kind {
            Kind::RParen => "')' has no matching '('".to_string(),
            _ => format!("unexpected {}", token.kind.describe()),
        };
        return Err(QueryError::new(token.offset, message));
    }
    if parser.leading_wildcards > 0 && length > MAX_LEADING_WILDCARD_QUERY_CHARS {
        return Err(QueryError::new(
            0,
            format!(
                "a query with a leading wildcard may be at most {MAX_LEADING_WILDCARD_QUERY_CHARS} characters long"
            ),
        ));
    }
    Ok(Parsed {
        query,
        term_offsets: parser.terms,
    })
}

// ---- lexer ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Colon,
    Compare(CompareOp),
    Minus,
    And,
    Or,
    Not,
    Word(Word),
    Quoted(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Word {
    pieces: Vec<Piece>,
    /// The word began with an unescaped `-`: exclusion in clause position, a sign in a value.
    negated: bool,
    /// The word is exactly the unescaped keyword `TO` (meaningful only inside a range).
    is_to: bool,
}

impl Kind {
    fn describe(&self) -> String {
        match self {
            Kind::LParen => "'('".into(),
            Kind::RParen => "')'".into(),
            Kind::LBracket => "'['".into(),
            Kind::RBracket => "']'".into(),
            Kind::LBrace => "'{'".into(),
            Kind::RBrace => "'}'".into(),
            Kind::Colon => "':'".into(),
            Kind::Compare(op) => format!("'{}'", op.symbol()),
            Kind::Minus => "'-'".into(),
            Kind::And => "AND".into(),
            Kind::Or => "OR".into(),
            Kind::Not => "NOT".into(),
            Kind::Word(_) => "a term".into(),
            Kind::Quoted(_) => "a quoted phrase".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    offset: usize,
}

fn unsupported(c: char) -> Option<&'static str> {
    Some(match c {
        '~' => "fuzzy and proximity searches ('~') are not supported",
        '^' => "boosting ('^') is not supported",
        '/' => "regular expressions are not supported; escape '/' as '\\/' to search for it",
        '+' => "the '+' operator is not supported; every term is required unless OR is used",
        '!' => "'!' is not supported; use NOT",
        '&' => "'&' is not supported; use AND",
        '|' => "'|' is not supported; use OR",
        '=' => "unknown operator '='; use ':' to match a value, or <, <=, >, >=",
        '`' | '@' | '#' | '%' | '\'' | ';' | ',' => {
            "special characters ` @ # % ' ; , must be escaped with '\\'"
        }
        _ => return None,
    })
}

fn lex(text: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let punct = match c {
            '(' => Some(Kind::LParen),
            ')' => Some(Kind::RParen),
            '[' => Some(Kind::LBracket),
            ']' => Some(Kind::RBracket),
            '{' => Some(Kind::LBrace),
            '}' => Some(Kind::RBrace),
            ':' => Some(Kind::Colon),
            _ => None,
        };
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if let Some(kind) = punct {
            tokens.push(Token {
                kind,
                offset: start,
            });
            i += 1;
            continue;
        }
        if c == '<' || c == '>' {
            let or_equal = chars.get(i + 1) == Some(&'=');
            let op = match (c, or_equal) {
                ('<', false) => CompareOp::Lt,
                ('<', true) => CompareOp::Le,
                ('>', false) => CompareOp::Gt,
                _ => CompareOp::Ge,
            };
            tokens.push(Token {
                kind: Kind::Compare(op),
                offset: start,
            });
            i += if or_equal { 2 } else { 1 };
            continue;
        }
        if c == '"' {
            let (phrase, next) = lex_quoted(&chars, i)?;
            tokens.push(Token {
                kind: Kind::Quoted(phrase),
                offset: start,
            });
            i = next;
            continue;
        }
        if let Some(message) = unsupported(c) {
            return Err(QueryError::new(i, message));
        }
        if c == '-' {
            match chars.get(i + 1) {
                Some('(') | Some('"') => {
                    tokens.push(Token {
                        kind: Kind::Minus,
                        offset: start,
                    });
                    i += 1;
                    continue;
                }
                None => return Err(QueryError::new(i, "'-' must be followed by a term")),
                Some(next) if next.is_whitespace() => {
                    return Err(QueryError::new(i, "'-' must be followed by a term"));
                }
                Some(_) => {}
            }
        }
        let (kind, next) = lex_word(&chars, i)?;
        tokens.push(Token {
            kind,
            offset: start,
        });
        i = next;
    }
    Ok(tokens)
}

fn lex_quoted(chars: &[char], open: usize) -> Result<(String, usize), QueryError> {
    let mut phrase = String::new();
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((phrase, i + 1)),
            '\\' => {
                let Some(&escaped) = chars.get(i + 1) else {
                    return Err(QueryError::new(
                        i,
                        "'\\' at the end of the query escapes nothing",
                    ));
                };
                phrase.push(escaped);
                i += 2;
            }
            c => {
                phrase.push(c);
                i += 1;
            }
        }
    }
    Err(QueryError::new(
        open,
        "the quoted phrase that starts here is never closed",
    ))
}

/// Reads a bare word from `start`: literal characters, `\`-escapes and the wildcards `*`, `?`.
fn lex_word(chars: &[char], start: usize) -> Result<(Kind, usize), QueryError> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut i = start;
    let mut negated = false;
    let mut escaped_any = false;
    if chars[i] == '-' {
        negated = true;
        i += 1;
    }
    let push_char = |pieces: &mut Vec<Piece>, c: char| match pieces.last_mut() {
        Some(Piece::Literal(s)) => s.push(c),
        _ => pieces.push(Piece::Literal(c.to_string())),
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&escaped) = chars.get(i + 1) else {
                    return Err(QueryError::new(
                        i,
                        "'\\' at the end of the query escapes nothing",
                    ));
                };
                push_char(&mut pieces, escaped);
                escaped_any = true;
                i += 2;
            }
            '*' => {
                if !matches!(pieces.last(), Some(Piece::AnyChars)) {
                    pieces.push(Piece::AnyChars);
                }
                i += 1;
            }
            '?' => {
                pieces.push(Piece::AnyChar);
                i += 1;
            }
            '"' => {
                return Err(QueryError::new(
                    i,
                    "a quote inside a term must be escaped with '\\'",
                ));
            }
            c if c.is_whitespace() || "()[]{}:<>".contains(c) => break,
            c => {
                if let Some(message) = unsupported(c) {
                    return Err(QueryError::new(i, message));
                }
                push_char(&mut pieces, c);
                i += 1;
            }
        }
    }
    if !negated
        && !escaped_any
        && let [Piece::Literal(word)] = pieces.as_slice()
    {
        let keyword = match word.as_str() {
            "AND" => Some(Kind::And),
            "OR" => Some(Kind::Or),
            "NOT" => Some(Kind::Not),
            _ => None,
        };
        if let Some(keyword) = keyword {
            return Ok((keyword, i));
        }
    }
    let is_to = !negated && !escaped_any && pieces == [Piece::Literal("TO".into())];
    Ok((
        Kind::Word(Word {
            pieces,
            negated,
            is_to,
        }),
        i,
    ))
}

// ---- parser --------------------------------------------------------------------------------

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    end: usize,
    terms: Vec<usize>,
    leading_wildcards: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn peek_kind(&self) -> Option<&Kind> {
        self.peek().map(|t| &t.kind)
    }

    fn bump(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    fn offset(&self) -> usize {
        self.peek().map_or(self.end, |t| t.offset)
    }

    fn expected(&self, what: &str) -> QueryError {
        match self.peek() {
            Some(token) => QueryError::new(
                token.offset,
                format!("expected {what}, found {}", token.kind.describe()),
            ),
            None => QueryError::new(self.end, format!("expected {what} at the end of the query")),
        }
    }

    fn or(&mut self, field: Option<&Field>) -> Result<Query, QueryError> {
        let mut clauses = vec![self.and(field)?];
        while self.peek_kind() == Some(&Kind::Or) {
            self.bump();
            clauses.push(self.and(field)?);
        }
        Ok(if clauses.len() == 1 {
            clauses.pop().expect("one clause")
        } else {
            Query::Or(clauses)
        })
    }

    fn and(&mut self, field: Option<&Field>) -> Result<Query, QueryError> {
        let mut clauses = vec![self.unary(field)?];
        loop {
            match self.peek_kind() {
                Some(Kind::And) => {
                    self.bump();
                    clauses.push(self.unary(field)?);
                }
                // Implicit AND: the next token starts another clause.
                Some(Kind::Not | Kind::Minus | Kind::LParen | Kind::Word(_) | Kind::Quoted(_)) => {
                    clauses.push(self.unary(field)?);
                }
                _ => break,
            }
        }
        Ok(if clauses.len() == 1 {
            clauses.pop().expect("one clause")
        } else {
            Query::And(clauses)
        })
    }

    fn unary(&mut self, field: Option<&Field>) -> Result<Query, QueryError> {
        match self.peek_kind() {
            Some(Kind::Not | Kind::Minus) => {
                self.bump();
                Ok(Query::Not(Box::new(self.unary(field)?)))
            }
            Some(Kind::Word(word)) if word.negated => {
                // `-term`: exclusion. Strip the sign and read the rest as a clause.
                let index = self.next;
                if let Kind::Word(word) = &mut self.tokens[index].kind {
                    word.negated = false;
                }
                self.tokens[index].offset += 1;
                Ok(Query::Not(Box::new(self.primary(field)?)))
            }
            _ => self.primary(field),
        }
    }

    fn primary(&mut self, field: Option<&Field>) -> Result<Query, QueryError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.expected("a term"));
        };
        match token.kind {
            Kind::LParen => {
                self.bump();
                let inner = self.or(field)?;
                match self.peek_kind() {
                    Some(Kind::RParen) => {
                        self.bump();
                        Ok(inner)
                    }
                    _ => Err(match self.peek() {
                        Some(next) => QueryError::new(
                            next.offset,
                            format!(
                                "expected ')' to close the '(' at position {}, found {}",
                                token.offset + 1,
                                next.kind.describe()
                            ),
                        ),
                        None => QueryError::new(
                            self.end,
                            format!(
                                "expected ')' to close the '(' at position {}",
                                token.offset + 1
                            ),
                        ),
                    }),
                }
            }
            Kind::Word(word) => {
                self.bump();
                let followed_by_field_syntax =
                    matches!(self.peek_kind(), Some(Kind::Colon | Kind::Compare(_)));
                if followed_by_field_syntax {
                    if field.is_some() {
                        return Err(QueryError::new(
                            token.offset,
                            "a field group in parentheses may hold only values, not other fields",
                        ));
                    }
                    let named = field_from_word(&word, token.offset)?;
                    return self.field_term(named, token.offset);
                }
                self.value_term(field.cloned(), word, token.offset)
            }
            Kind::Quoted(phrase) => {
                self.bump();
                self.record_term(token.offset, false)?;
                Ok(Query::Term(Term {
                    field: field.cloned(),
                    predicate: Predicate::Matches(Text::literal(phrase)),
                }))
            }
            _ => Err(self.expected("a term")),
        }
    }

    fn record_term(&mut self, offset: usize, leading_wildcard: bool) -> Result<(), QueryError> {
        if self.terms.len() == MAX_QUERY_TERMS {
            return Err(QueryError::new(
                offset,
                format!("a query may have at most {MAX_QUERY_TERMS} terms"),
            ));
        }
        if leading_wildcard {
            if self.leading_wildcards == MAX_LEADING_WILDCARD_TERMS {
                return Err(QueryError::new(
                    offset,
                    "only one term per query may start with a wildcard",
                ));
            }
            self.leading_wildcards += 1;
        }
        self.terms.push(offset);
        Ok(())
    }

    /// A bare word in value position: `sensor*`, or `*` (every thing, or the field exists).
    fn value_term(
        &mut self,
        field: Option<Field>,
        word: Word,
        offset: usize,
    ) -> Result<Query, QueryError> {
        if word.pieces == [Piece::AnyChars] && !word.negated {
            self.record_term(offset, false)?;
            return Ok(Query::Term(Term {
                field,
                predicate: Predicate::Exists,
            }));
        }
        let text = word_text(word);
        self.record_term(offset, text.starts_with_wildcard())?;
        Ok(Query::Term(Term {
            field,
            predicate: Predicate::Matches(text),
        }))
    }

    /// What follows `field` in `field:value`, `field:(…)`, `field:[a TO b]` or `field < v`.
    fn field_term(&mut self, field: Field, field_offset: usize) -> Result<Query, QueryError> {
        let separator = self.bump().expect("caller saw ':' or a comparison");
        let op = match separator.kind {
            Kind::Compare(op) => Some(op),
            _ => match self.peek_kind() {
                Some(Kind::Compare(op)) => {
                    let op = *op;
                    self.bump();
                    Some(op)
                }
                _ => None,
            },
        };
        if let Some(op) = op {
            let value = self.literal_value("a value to compare with")?;
            self.record_term(field_offset, false)?;
            return Ok(Query::Term(Term {
                field: Some(field),
                predicate: Predicate::Compare(op, value),
            }));
        }
        let Some(token) = self.peek().cloned() else {
            return Err(self.expected(&format!("a value for {}", field.name())));
        };
        match token.kind {
            Kind::LParen => {
                self.bump();
                let inner = self.or(Some(&field))?;
                match self.peek_kind() {
                    Some(Kind::RParen) => {
                        self.bump();
                        Ok(inner)
                    }
                    _ => Err(self.expected(&format!(
                        "')' to close the field group at position {}",
                        token.offset + 1
                    ))),
                }
            }
            Kind::LBracket | Kind::LBrace => {
                self.bump();
                let inclusive_lower = token.kind == Kind::LBracket;
                let lower = self.range_bound(inclusive_lower)?;
                match self.peek_kind() {
                    Some(Kind::Word(w)) if w.is_to => {
                        self.bump();
                    }
                    _ => return Err(self.expected("TO in the range")),
                }
                let upper_offset = self.offset();
                let upper_value = self.range_value()?;
                let upper = match self.peek_kind() {
                    Some(Kind::RBracket) => upper_value.map_or(Bound::Unbounded, Bound::Inclusive),
                    Some(Kind::RBrace) => upper_value.map_or(Bound::Unbounded, Bound::Exclusive),
                    _ => return Err(self.expected("']' or '}' to close the range")),
                };
                self.bump();
                if lower == Bound::Unbounded && upper == Bound::Unbounded {
                    return Err(QueryError::new(
                        upper_offset,
                        "a range needs at least one bound; use field:* to match any value",
                    ));
                }
                self.record_term(field_offset, false)?;
                Ok(Query::Term(Term {
                    field: Some(field),
                    predicate: Predicate::Range { lower, upper },
                }))
            }
            Kind::Word(word) => {
                self.bump();
                self.value_term(Some(field), word, field_offset)
            }
            Kind::Quoted(phrase) => {
                self.bump();
                self.record_term(field_offset, false)?;
                Ok(Query::Term(Term {
                    field: Some(field),
                    predicate: Predicate::Matches(Text::literal(phrase)),
                }))
            }
            _ => Err(self.expected(&format!("a value for {}", field.name()))),
        }
    }

    fn range_bound(&mut self, inclusive: bool) -> Result<Bound, QueryError> {
        Ok(match self.range_value()? {
            None => Bound::Unbounded,
            Some(v) if inclusive => Bound::Inclusive(v),
            Some(v) => Bound::Exclusive(v),
        })
    }

    /// A range end: a literal, or `*` for an open end (`None`).
    fn range_value(&mut self) -> Result<Option<String>, QueryError> {
        if let Some(Kind::Word(word)) = self.peek_kind()
            && word.pieces == [Piece::AnyChars]
            && !word.negated
        {
            self.bump();
            return Ok(None);
        }
        self.literal_value("a range bound").map(Some)
    }

    /// A value without wildcards: a bare word or a quoted phrase.
    fn literal_value(&mut self, what: &str) -> Result<String, QueryError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.expected(what));
        };
        match token.kind {
            Kind::Quoted(phrase) => {
                self.bump();
                Ok(phrase)
            }
            Kind::Word(word) if !word.is_to => {
                self.bump();
                word_text(word).as_literal().ok_or_else(|| {
                    QueryError::new(token.offset, format!("{what} cannot contain wildcards"))
                })
            }
            _ => Err(self.expected(what)),
        }
    }
}

fn word_text(word: Word) -> Text {
    let mut pieces = word.pieces;
    if word.negated {
        match pieces.first_mut() {
            Some(Piece::Literal(s)) => s.insert(0, '-'),
            _ => pieces.insert(0, Piece::Literal("-".into())),
        }
    }
    Text(pieces)
}

/// Resolves a field name (case-sensitive, as on AWS).
fn field_from_word(word: &Word, offset: usize) -> Result<Field, QueryError> {
    let name = match word_text(word.clone()).as_literal() {
        Some(name) => name,
        None => {
            return Err(QueryError::new(
                offset,
                "a field name cannot contain wildcards",
            ));
        }
    };
    field_named(&name).map_err(|message| QueryError::new(offset, message))
}

/// The field a name denotes (case-sensitive, as on AWS), or why there is none.
pub fn field_named(name: &str) -> Result<Field, String> {
    let field = match name {
        "thingName" => Field::ThingName,
        "thingId" => Field::ThingId,
        "thingTypeName" => Field::ThingTypeName,
        "thingGroupNames" => Field::ThingGroupNames,
        "registry.version" => Field::RegistryVersion,
        "connectivity.connected" => Field::ConnectivityConnected,
        "connectivity.timestamp" => Field::ConnectivityTimestamp,
        "connectivity.disconnectReason" => Field::ConnectivityDisconnectReason,
        other => {
            if let Some(key) = other.strip_prefix("attributes.") {
                crate::names::check_attribute_key(key).map_err(|e| e.to_string())?;
                Field::Attribute(key.to_string())
            } else if let Some(path) = other.strip_prefix("shadow.")
                && !path.is_empty()
            {
                Field::Shadow(path.to_string())
            } else {
                return Err(format!(
                    "unknown field '{other}'; searchable fields are thingName, thingId, \
                         thingTypeName, thingGroupNames, attributes.NAME, registry.version, \
                         connectivity.connected, connectivity.timestamp, \
                         connectivity.disconnectReason and shadow.…"
                ));
            }
        }
    };
    Ok(field)
}
