//! nginx's configuration syntax: directives with arguments, ended by `;` or a `{ ... }` block.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One directive (`server 10.0.0.1:80 weight=2;` or `location /api { ... }`) and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Directive {
    /// The directive's name (`upstream`, `server`, `proxy_pass`, ...).
    pub name: String,
    /// Its arguments, unquoted.
    pub args: Vec<String>,
    /// Its block's directives, when it has a block.
    pub block: Option<Vec<Directive>>,
    /// Where it was written.
    pub at: Location,
}

/// A file and 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as given or as resolved from an `include`.
    pub file: Arc<PathBuf>,
    /// 1-based line.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Text that is not nginx syntax, and where.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct SyntaxError {
    /// Where.
    pub at: Location,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Open,
    Close,
    Semicolon,
}

/// Splits `text` into tokens with their lines; `#` comments and whitespace are dropped.
fn tokenize(file: &Arc<PathBuf>, text: &str) -> Result<Vec<(Token, usize)>, SyntaxError> {
    let err = |line, message: String| SyntaxError {
        at: Location {
            file: Arc::clone(file),
            line,
        },
        message,
    };
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                line += 1;
                chars.next();
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => while chars.next_if(|&c| c != '\n').is_some() {},
            '{' => {
                chars.next();
                out.push((Token::Open, line));
            }
            '}' => {
                chars.next();
                out.push((Token::Close, line));
            }
            ';' => {
                chars.next();
                out.push((Token::Semicolon, line));
            }
            '"' | '\'' => {
                let start = line;
                chars.next();
                let mut word = String::new();
                loop {
                    match chars.next() {
                        None => return Err(err(start, format!("unterminated {c}quoted string"))),
                        Some(q) if q == c => break,
                        Some('\\') => match chars.next() {
                            Some('n') => word.push('\n'),
                            Some('t') => word.push('\t'),
                            Some('r') => word.push('\r'),
                            Some(other) => {
                                // nginx keeps the backslash before anything but the quote and
                                // itself (regexes rely on it).
                                if other != c && other != '\\' {
                                    word.push('\\');
                                }
                                if other == '\n' {
                                    line += 1;
                                }
                                word.push(other);
                            }
                            None => {
                                return Err(err(start, format!("unterminated {c}quoted string")));
                            }
                        },
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            word.push(ch);
                        }
                    }
                }
                out.push((Token::Word(word), start));
            }
            _ => {
                let mut word = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || matches!(ch, ';' | '{' | '}') {
                        // `${var}` is one word: its braces are not a block.
                        if ch == '{' && word.ends_with('$') {
                            for inner in chars.by_ref() {
                                word.push(inner);
                                if inner == '}' {
                                    break;
                                }
                            }
                            continue;
                        }
                        break;
                    }
                    if ch == '\\' {
                        chars.next();
                        if let Some(escaped) = chars.next() {
                            word.push('\\');
                            word.push(escaped);
                        }
                        continue;
                    }
                    word.push(ch);
                    chars.next();
                }
                out.push((Token::Word(word), line));
            }
        }
    }
    Ok(out)
}

/// Parses one file's text (`file` names it in errors). `include`s are left as directives.
pub fn parse(file: &Path, text: &str) -> Result<Vec<Directive>, SyntaxError> {
    let file = Arc::new(file.to_path_buf());
    let tokens = tokenize(&file, text)?;
    let mut pos = 0;
    let at = |line| Location {
        file: Arc::clone(&file),
        line,
    };
    let directives = block(&tokens, &mut pos, &at, None)?;
    Ok(directives)
}

/// Directives until `}` (when `opened` says which line opened the block) or the end.
fn block(
    tokens: &[(Token, usize)],
    pos: &mut usize,
    at: &dyn Fn(usize) -> Location,
    opened: Option<usize>,
) -> Result<Vec<Directive>, SyntaxError> {
    let mut out = Vec::new();
    loop {
        let Some((token, line)) = tokens.get(*pos) else {
            return match opened {
                None => Ok(out),
                Some(l) => Err(SyntaxError {
                    at: at(l),
                    message: "this block's `{` is never closed (unexpected end of file)".into(),
                }),
            };
        };
        *pos += 1;
        let name = match token {
            Token::Word(w) => w.clone(),
            Token::Close if opened.is_some() => return Ok(out),
            Token::Close => {
                return Err(SyntaxError {
                    at: at(*line),
                    message: "unexpected `}`".into(),
                });
            }
            Token::Open | Token::Semicolon => {
                return Err(SyntaxError {
                    at: at(*line),
                    message: format!(
                        "unexpected `{}` where a directive name belongs",
                        if *token == Token::Open { "{" } else { ";" }
                    ),
                });
            }
        };
        let start = *line;
        let mut args = Vec::new();
        loop {
            match tokens.get(*pos) {
                Some((Token::Word(w), _)) => {
                    args.push(w.clone());
                    *pos += 1;
                }
                Some((Token::Semicolon, _)) => {
                    *pos += 1;
                    out.push(Directive {
                        name,
                        args,
                        block: None,
                        at: at(start),
                    });
                    break;
                }
                Some((Token::Open, _)) => {
                    *pos += 1;
                    let inner = block(tokens, pos, at, Some(start))?;
                    out.push(Directive {
                        name,
                        args,
                        block: Some(inner),
                        at: at(start),
                    });
                    break;
                }
                Some((Token::Close, l)) => {
                    return Err(SyntaxError {
                        at: at(*l),
                        message: format!("directive `{name}` is not terminated by `;`"),
                    });
                }
                None => {
                    return Err(SyntaxError {
                        at: at(start),
                        message: format!(
                            "directive `{name}` is not terminated by `;` (unexpected end of file)"
                        ),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<Directive>, SyntaxError> {
        parse(Path::new("t.conf"), text)
    }

    #[test]
    fn directives_blocks_comments_and_quotes() {
        let d = p("# top\nhttp {\n  upstream app { server 10.0.0.1:80 weight=2; } # trailing\n  \
                   server { server_name \"a b\" 'c;d'; location /x { proxy_pass http://app; } }\n}\n")
            .expect("parses");
        assert_eq!(d.len(), 1);
        let http = d[0].block.as_ref().expect("block");
        assert_eq!(http[0].name, "upstream");
        assert_eq!(http[0].args, vec!["app"]);
        assert_eq!(http[0].at.line, 3);
        let server = &http[0].block.as_ref().expect("upstream block")[0];
        assert_eq!(server.args, vec!["10.0.0.1:80", "weight=2"]);
        let vhost = http[1].block.as_ref().expect("server block");
        assert_eq!(vhost[0].args, vec!["a b", "c;d"]);
        assert_eq!(vhost[1].at.line, 4);
        assert_eq!(vhost[1].at.to_string(), "t.conf:4");
    }

    #[test]
    fn variables_with_braces_are_words() {
        let d = p("location / { proxy_pass http://${backend}_pool; }").expect("parses");
        let inner = d[0].block.as_ref().expect("block");
        assert_eq!(inner[0].args, vec!["http://${backend}_pool"]);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = p("http {\n  server {\n    listen 80;\n").expect_err("unclosed");
        assert_eq!(e.at.line, 2);
        assert!(e.message.contains("never closed"), "{e}");
        let e = p("http {\n  listen 80\n}\n").expect_err("no semicolon");
        assert_eq!(e.at.line, 3);
        assert!(e.message.contains("`listen`"), "{e}");
        let e = p("}\n").expect_err("stray brace");
        assert_eq!(e.to_string(), "t.conf:1: unexpected `}`");
        let e = p("a \"b;\n").expect_err("open quote");
        assert!(e.message.contains("unterminated"), "{e}");
    }
}
