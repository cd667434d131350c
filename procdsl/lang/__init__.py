"""The .curr language front end: parse (Lark) → lower (typed AST with spans) → format."""
