//! The AWS IoT SQL syntax tree: a statement (`SELECT … FROM '…' WHERE …`), its projections, and
//! expressions. Produced by `parser.rs`, walked by `eval.rs`; it carries no positions because
//! every check that needs one happens while parsing.

use serde_json::Value;

/// A whole rule statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub select: Select,
    /// The topic filter of the FROM clause (`+` and `#` allowed), without its quotes.
    pub from: String,
    pub condition: Option<Expr>,
}

/// The SELECT list. `value` is `SELECT VALUE expr`: the result is the value itself rather
/// than an object holding it.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub value: bool,
    pub items: Vec<Projection>,
}

/// One item of a SELECT list.
#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    /// `*`: every member of the payload (or the payload's bytes when it is not JSON).
    Star,
    /// `expr [AS a.b.c]`; `name` is the output path: the alias, or a name derived from the
    /// expression as AWS derives it.
    Expr { expr: Expr, name: Vec<String> },
}

/// A nested `(SELECT … FROM array-expr [WHERE …])`, evaluated once per element.
#[derive(Debug, Clone, PartialEq)]
pub struct Subquery {
    pub select: Select,
    pub from: Expr,
    pub condition: Option<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

/// The types `cast(x AS type)` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastType {
    Int,
    Decimal,
    Boolean,
    String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    /// A field of the current scope: the payload, or the element a subquery is visiting.
    Field(String),
    /// `expr.name`
    Member(Box<Expr>, String),
    /// `expr[index]`
    Index(Box<Expr>, Box<Expr>),
    /// A function call; the name is lower case.
    Call(String, Vec<Expr>),
    /// `*` as a function argument (`encode(*, 'base64')`): the raw payload.
    Payload,
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Case {
        operand: Option<Box<Expr>>,
        arms: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Cast(Box<Expr>, CastType),
    Object(Vec<(String, Expr)>),
    Array(Vec<Expr>),
    Subquery(Box<Subquery>),
}
