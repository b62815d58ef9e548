//! Reads an nginx config file and splices in its `include`d files, as nginx does.

use std::path::{Path, PathBuf};

use super::syntax::{Directive, Location, SyntaxError, parse};

/// Includes nested deeper than this are a loop, not a config.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Why a config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Not nginx syntax.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// An `include` that cannot be followed.
    #[error("{at}: {message}")]
    Include {
        /// The `include` directive.
        at: Location,
        /// Why.
        message: String,
    },
}

/// `text`, read from `path`, with every `include` replaced by the included files' directives.
/// Relative includes are resolved against `path`'s directory (nginx resolves them against its
/// prefix, which is that directory for a config passed with `-c`).
pub fn load_text(path: &Path, text: &str) -> Result<Vec<Directive>, LoadError> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    expand(parse(path, text)?, &base, 0)
}

/// The text of the config file at `path`.
pub fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn load_file(path: &Path, base: &Path, depth: usize) -> Result<Vec<Directive>, LoadError> {
    let directives = parse(path, &read(path)?)?;
    expand(directives, base, depth)
}

fn expand(
    directives: Vec<Directive>,
    base: &Path,
    depth: usize,
) -> Result<Vec<Directive>, LoadError> {
    let mut out = Vec::new();
    for mut d in directives {
        if d.name == "include" && d.block.is_none() {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(LoadError::Include {
                    at: d.at,
                    message: format!("includes nest deeper than {MAX_INCLUDE_DEPTH} (a loop?)"),
                });
            }
            let [pattern] = d.args.as_slice() else {
                return Err(LoadError::Include {
                    at: d.at,
                    message: "`include` takes exactly one file or pattern".into(),
                });
            };
            for file in matching_files(base, pattern, &d.at)? {
                out.extend(load_file(&file, base, depth + 1)?);
            }
            continue;
        }
        if let Some(block) = d.block.take() {
            d.block = Some(expand(block, base, depth)?);
        }
        out.push(d);
    }
    Ok(out)
}

/// The files an `include` names: one file (which must exist) or a pattern with `*`/`?` in
/// its last component (which may match nothing, as in nginx), sorted.
fn matching_files(base: &Path, pattern: &str, at: &Location) -> Result<Vec<PathBuf>, LoadError> {
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let name = full
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if !name.contains(['*', '?']) {
        if !full.is_file() {
            return Err(LoadError::Include {
                at: at.clone(),
                message: format!("included file {} does not exist", full.display()),
            });
        }
        return Ok(vec![full]);
    }
    let dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.to_string_lossy().contains(['*', '?']) {
        return Err(LoadError::Include {
            at: at.clone(),
            message: format!("{pattern:?}: wildcards are only followed in the file name"),
        });
    }
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        // nginx accepts a pattern that matches nothing, including in a missing directory.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(LoadError::Read { path: dir, source }),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| wildcard(&name, n))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Shell-style match of `*` (any run) and `?` (one character).
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(path: &Path) -> Result<Vec<Directive>, LoadError> {
        load_text(path, &read(path)?)
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.conf", "shop.conf"));
        assert!(!wildcard("*.conf", "shop.conf.bak"));
        assert!(wildcard("site-?.conf", "site-a.conf"));
        assert!(wildcard("*", ""));
    }

    #[test]
    fn includes_are_spliced_in_place_with_their_own_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
        std::fs::write(
            dir.path().join("nginx.conf"),
            "http {\n  include conf.d/*.conf;\n  include missing.d/*.conf;\n}\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("conf.d/b.conf"),
            "\nserver { server_name b; }\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("conf.d/a.conf"),
            "upstream a { server x:1; }\n",
        )
        .expect("write");
        let d = load(&dir.path().join("nginx.conf")).expect("loads");
        let http = d[0].block.as_ref().expect("http block");
        assert_eq!(
            http.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            vec!["upstream", "server"]
        );
        assert!(http[1].at.file.ends_with("conf.d/b.conf"));
        assert_eq!(http[1].at.line, 2);
    }

    #[test]
    fn a_missing_include_names_the_include_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, "events {}\ninclude sites.conf;\n").expect("write");
        let e = load(&conf).expect_err("missing");
        let text = e.to_string();
        assert!(text.contains("nginx.conf:2"), "{text}");
        assert!(text.contains("sites.conf does not exist"), "{text}");
    }

    #[test]
    fn an_include_loop_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, "include nginx.conf;\n").expect("write");
        let e = load(&conf).expect_err("loop");
        assert!(e.to_string().contains("deeper than"), "{e}");
    }
}
