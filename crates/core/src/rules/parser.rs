//! The AWS IoT SQL parser: recursive descent over the lexer's tokens, with errors that say
//! where (line, column) and what was expected, which the API returns as `SqlParseException`.
//!
//! Precedence, loosest first: `OR`, `AND`, `NOT`, comparisons (`= <> != < <= > >= IN
//! CONTAINS`), `+ -`, `* / %`, unary `-`, then member access (`.name`, `[index]`). The FROM
//! clause of a statement is a quoted MQTT topic filter, checked with `mqtt_topic`'s rules.

use serde_json::Value;

use super::SqlError;
use super::ast::*;
use super::lexer::{Tok, Token, lex};
use crate::mqtt_topic::check_topic_filter;

/// AWS IoT's limit on a rule's SQL statement.
pub const MAX_SQL_BYTES: usize = 2048;
/// Nesting deeper than this is refused, so no statement can exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Words that cannot name a field without back-quotes.
const KEYWORDS: &[&str] = &[
    "select", "from", "where", "as", "and", "or", "not", "case", "when", "then", "else", "end",
    "true", "false", "null", "in", "contains", "value",
];

/// Parses a whole rule statement.
pub fn parse(src: &str) -> Result<Statement, SqlError> {
    if src.len() > MAX_SQL_BYTES {
        return Err(SqlError::at(
            src,
            MAX_SQL_BYTES,
            format!(
                "the statement is {} bytes long; the maximum is {MAX_SQL_BYTES}",
                src.len()
            ),
        ));
    }
    let mut p = Parser::new(src)?;
    let statement = p.statement()?;
    p.expect_end()?;
    Ok(statement)
}

/// Parses one expression (the inside of a substitution template `${…}`).
pub fn parse_expression(src: &str) -> Result<Expr, SqlError> {
    let mut p = Parser::new(src)?;
    let expr = p.expr()?;
    p.expect_end()?;
    Ok(expr)
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    next: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Result<Self, SqlError> {
        Ok(Self {
            src,
            tokens: lex(src)?,
            next: 0,
            depth: 0,
        })
    }

    fn peek(&self) -> &Tok {
        &self.tokens[self.next].tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        let i = (self.next + ahead).min(self.tokens.len() - 1);
        &self.tokens[i].tok
    }

    fn here(&self) -> usize {
        self.tokens[self.next].at
    }

    fn bump(&mut self) -> Tok {
        let tok = self.tokens[self.next].tok.clone();
        if self.next + 1 < self.tokens.len() {
            self.next += 1;
        }
        tok
    }

    fn error(&self, message: impl Into<String>) -> SqlError {
        SqlError::at(self.src, self.here(), message)
    }

    fn unexpected(&self, expected: &str) -> SqlError {
        self.error(format!(
            "expected {expected}, found {}",
            self.peek().describe()
        ))
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(word))
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if self.is_keyword(word) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), SqlError> {
        if self.eat_keyword(word) {
            Ok(())
        } else {
            Err(self.unexpected(&word.to_ascii_uppercase()))
        }
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: Tok) -> Result<(), SqlError> {
        if self.eat(&tok) {
            Ok(())
        } else {
            Err(self.unexpected(&tok.describe()))
        }
    }

    fn expect_end(&self) -> Result<(), SqlError> {
        if *self.peek() == Tok::Eof {
            Ok(())
        } else {
            Err(self.unexpected("the end of the statement"))
        }
    }

    fn enter(&mut self) -> Result<(), SqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("expressions nest deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn statement(&mut self) -> Result<Statement, SqlError> {
        self.expect_keyword("select")?;
        let select = self.select_list()?;
        self.expect_keyword("from")?;
        let at = self.here();
        let from = match self.bump() {
            Tok::Str(topic) => topic,
            _ => {
                return Err(SqlError::at(
                    self.src,
                    at,
                    "expected a quoted topic filter after FROM, such as 'my/topic/#'",
                ));
            }
        };
        if let Err(e) = check_topic_filter(&from) {
            return Err(SqlError::at(self.src, at, e.to_string()));
        }
        let condition = if self.eat_keyword("where") {
            Some(self.expr()?)
        } else {
            None
        };
        Ok(Statement {
            select,
            from,
            condition,
        })
    }

    fn select_list(&mut self) -> Result<Select, SqlError> {
        let value = self.eat_keyword("value");
        let mut items = Vec::new();
        loop {
            let position = items.len() + 1;
            if self.eat(&Tok::Star) {
                if value {
                    return Err(self.error("SELECT VALUE takes one expression, not '*'"));
                }
                items.push(Projection::Star);
            } else {
                let expr = self.expr()?;
                let name = if self.eat_keyword("as") {
                    self.alias()?
                } else {
                    vec![default_name(&expr, position)]
                };
                items.push(Projection::Expr { expr, name });
            }
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        if value && items.len() != 1 {
            return Err(self.error("SELECT VALUE takes exactly one expression"));
        }
        Ok(Select { value, items })
    }

    /// `AS a.b.c`: a path of names; the output nests objects along it.
    fn alias(&mut self) -> Result<Vec<String>, SqlError> {
        let mut path = vec![self.name("an alias after AS")?];
        while self.eat(&Tok::Dot) {
            path.push(self.name("a name after '.'")?);
        }
        Ok(path)
    }

    /// A field or alias name: an identifier that is not a keyword, a back-quoted name, or a
    /// quoted string (aliases only need text).
    fn name(&mut self, expected: &str) -> Result<String, SqlError> {
        match self.peek().clone() {
            Tok::Ident(s) if !is_keyword(&s) => {
                self.bump();
                Ok(s)
            }
            Tok::Quoted(s) | Tok::Str(s) => {
                self.bump();
                Ok(s)
            }
            Tok::Int(i) => {
                // `a.0` reads member "0", as AWS's examples write it.
                self.bump();
                Ok(i.to_string())
            }
            _ => Err(self.unexpected(expected)),
        }
    }

    pub fn expr(&mut self) -> Result<Expr, SqlError> {
        self.enter()?;
        let result = self.or();
        self.depth -= 1;
        result
    }

    fn or(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.and()?;
        while self.eat_keyword("or") {
            let right = self.and()?;
            left = Expr::Binary(BinaryOp::Or, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.not()?;
        while self.eat_keyword("and") {
            let right = self.not()?;
            left = Expr::Binary(BinaryOp::And, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, SqlError> {
        if self.eat_keyword("not") {
            self.enter()?;
            let operand = self.not();
            self.depth -= 1;
            return Ok(Expr::Unary(UnaryOp::Not, Box::new(operand?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SqlError> {
        let left = self.additive()?;
        let op = match self.peek() {
            Tok::Eq => BinaryOp::Eq,
            Tok::Ne => BinaryOp::Ne,
            Tok::Lt => BinaryOp::Lt,
            Tok::Le => BinaryOp::Le,
            Tok::Gt => BinaryOp::Gt,
            Tok::Ge => BinaryOp::Ge,
            Tok::Ident(s) if s.eq_ignore_ascii_case("in") => BinaryOp::In,
            Tok::Ident(s) if s.eq_ignore_ascii_case("contains") => BinaryOp::Contains,
            _ => return Ok(left),
        };
        self.bump();
        let right = if op == BinaryOp::In && *self.peek() == Tok::LParen && self.is_list() {
            self.paren_list()?
        } else {
            self.additive()?
        };
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    /// After `IN`: `(a, b, …)` with a comma at depth one is a list, not a parenthesised
    /// expression.
    fn is_list(&self) -> bool {
        let mut depth = 0usize;
        for token in &self.tokens[self.next..] {
            match token.tok {
                Tok::LParen | Tok::LBracket | Tok::LBrace => depth += 1,
                Tok::RParen | Tok::RBracket | Tok::RBrace => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return false;
                    }
                }
                Tok::Comma if depth == 1 => return true,
                Tok::Eof => return false,
                _ => {}
            }
        }
        false
    }

    fn paren_list(&mut self) -> Result<Expr, SqlError> {
        self.expect(Tok::LParen)?;
        let mut items = vec![self.expr()?];
        while self.eat(&Tok::Comma) {
            items.push(self.expr()?);
        }
        self.expect(Tok::RParen)?;
        Ok(Expr::Array(items))
    }

    fn additive(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinaryOp::Add,
                Tok::Minus => BinaryOp::Sub,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.multiplicative()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Star => BinaryOp::Mul,
                Tok::Slash => BinaryOp::Div,
                Tok::Percent => BinaryOp::Rem,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, SqlError> {
        if self.eat(&Tok::Minus) {
            self.enter()?;
            let operand = self.unary();
            self.depth -= 1;
            return Ok(match operand? {
                Expr::Literal(Value::Number(n)) => Expr::Literal(negate(&n)),
                other => Expr::Unary(UnaryOp::Neg, Box::new(other)),
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, SqlError> {
        let mut expr = self.primary()?;
        loop {
            if self.eat(&Tok::Dot) {
                let name = self.name("a field name after '.'")?;
                expr = Expr::Member(Box::new(expr), name);
            } else if self.eat(&Tok::LBracket) {
                let index = self.expr()?;
                self.expect(Tok::RBracket)?;
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else {
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, SqlError> {
        let at = self.here();
        match self.peek().clone() {
            Tok::Int(i) => {
                self.bump();
                Ok(Expr::Literal(Value::from(i)))
            }
            Tok::Decimal(d) => {
                self.bump();
                Ok(Expr::Literal(
                    super::value::decimal(d).unwrap_or(Value::Null),
                ))
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::Literal(Value::String(s)))
            }
            Tok::Quoted(s) => {
                self.bump();
                Ok(Expr::Field(s))
            }
            Tok::LParen => {
                self.bump();
                let inner = if self.is_keyword("select") {
                    Expr::Subquery(Box::new(self.subquery()?))
                } else {
                    self.expr()?
                };
                self.expect(Tok::RParen)?;
                Ok(inner)
            }
            Tok::LBracket => {
                self.bump();
                let mut items = Vec::new();
                if !self.eat(&Tok::RBracket) {
                    loop {
                        items.push(self.expr()?);
                        if !self.eat(&Tok::Comma) {
                            break;
                        }
                    }
                    self.expect(Tok::RBracket)?;
                }
                Ok(Expr::Array(items))
            }
            Tok::LBrace => {
                self.bump();
                let mut members = Vec::new();
                if !self.eat(&Tok::RBrace) {
                    loop {
                        let key = self.name("an object key")?;
                        self.expect(Tok::Colon)?;
                        members.push((key, self.expr()?));
                        if !self.eat(&Tok::Comma) {
                            break;
                        }
                    }
                    self.expect(Tok::RBrace)?;
                }
                Ok(Expr::Object(members))
            }
            Tok::Ident(word) => {
                let lower = word.to_ascii_lowercase();
                match lower.as_str() {
                    "true" => {
                        self.bump();
                        Ok(Expr::Literal(Value::Bool(true)))
                    }
                    "false" => {
                        self.bump();
                        Ok(Expr::Literal(Value::Bool(false)))
                    }
                    "null" => {
                        self.bump();
                        Ok(Expr::Literal(Value::Null))
                    }
                    "case" => {
                        self.bump();
                        self.case()
                    }
                    "cast" if *self.peek_at(1) == Tok::LParen => {
                        self.bump();
                        self.cast()
                    }
                    _ if *self.peek_at(1) == Tok::LParen => {
                        self.bump();
                        self.call(lower, at)
                    }
                    _ if is_keyword(&word) => Err(self.unexpected("an expression")),
                    _ => {
                        self.bump();
                        Ok(Expr::Field(word))
                    }
                }
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    fn call(&mut self, name: String, at: usize) -> Result<Expr, SqlError> {
        if !super::functions::is_known(&name) {
            return Err(SqlError::at(
                self.src,
                at,
                format!("unknown function '{name}'"),
            ));
        }
        self.expect(Tok::LParen)?;
        let mut args = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                if *self.peek() == Tok::Star && matches!(self.peek_at(1), Tok::Comma | Tok::RParen)
                {
                    self.bump();
                    args.push(Expr::Payload);
                } else {
                    args.push(self.expr()?);
                }
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
            self.expect(Tok::RParen)?;
        }
        if let Err(message) = super::functions::check_arity(&name, args.len()) {
            return Err(SqlError::at(self.src, at, message));
        }
        Ok(Expr::Call(name, args))
    }

    fn cast(&mut self) -> Result<Expr, SqlError> {
        self.expect(Tok::LParen)?;
        let value = self.expr()?;
        self.expect_keyword("as")?;
        let ty = match self.peek() {
            Tok::Ident(s) => match s.to_ascii_lowercase().as_str() {
                "int" | "integer" => CastType::Int,
                "decimal" | "double" | "float" => CastType::Decimal,
                "bool" | "boolean" => CastType::Boolean,
                "string" | "varchar" => CastType::String,
                _ => return Err(self.unexpected("Int, Decimal, Boolean or String")),
            },
            _ => return Err(self.unexpected("Int, Decimal, Boolean or String")),
        };
        self.bump();
        self.expect(Tok::RParen)?;
        Ok(Expr::Cast(Box::new(value), ty))
    }

    fn case(&mut self) -> Result<Expr, SqlError> {
        let operand = if self.is_keyword("when") {
            None
        } else {
            Some(Box::new(self.expr()?))
        };
        let mut arms = Vec::new();
        while self.eat_keyword("when") {
            let when = self.expr()?;
            self.expect_keyword("then")?;
            arms.push((when, self.expr()?));
        }
        if arms.is_empty() {
            return Err(self.unexpected("WHEN"));
        }
        let otherwise = if self.eat_keyword("else") {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        self.expect_keyword("end")?;
        Ok(Expr::Case {
            operand,
            arms,
            otherwise,
        })
    }

    fn subquery(&mut self) -> Result<Subquery, SqlError> {
        self.enter()?;
        self.expect_keyword("select")?;
        let select = self.select_list()?;
        self.expect_keyword("from")?;
        let from = self.expr()?;
        let condition = if self.eat_keyword("where") {
            Some(self.expr()?)
        } else {
            None
        };
        self.depth -= 1;
        Ok(Subquery {
            select,
            from,
            condition,
        })
    }
}

fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

fn negate(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64().and_then(i64::checked_neg) {
        return Value::from(i);
    }
    n.as_f64()
        .and_then(|f| super::value::decimal(-f))
        .unwrap_or(Value::Null)
}

/// The output name of an unaliased projection: a field's own name, a function's name, else
/// `_N` for the N-th item.
fn default_name(expr: &Expr, position: usize) -> String {
    match expr {
        Expr::Field(name) | Expr::Member(_, name) => name.clone(),
        Expr::Call(name, _) => name.clone(),
        _ => format!("_{position}"),
    }
}
