//! What `/proc` says about a pid: is it alive, when did it start, is it still what we started.
//!
//! A pid alone is not an identity: after a controller restart the pid in the state file may
//! belong to an unrelated process that reused it. The kernel start time (clock ticks since
//! boot) plus the command line pin it down.

use std::io;
use std::path::Path;

/// The fields of `/proc/<pid>/stat` this module needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// One-letter state: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    /// Start time in clock ticks since boot (field 22).
    pub start_ticks: u64,
}

impl ProcStat {
    /// Whether the process still runs (a zombie has exited, it only awaits its parent).
    pub fn is_running(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may
/// itself contain spaces and parentheses, so the fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let after_comm = &text[text.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // `fields` now starts at field 4; the start time is field 22.
    let start_ticks = fields.nth(22 - 4)?.parse().ok()?;
    Some(ProcStat { state, start_ticks })
}

/// Reads `/proc/<pid>/stat`; `Ok(None)` when the pid does not exist.
pub(crate) fn read_stat(pid: u32) -> io::Result<Option<ProcStat>> {
    match std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")) {
        Ok(text) => parse_stat(&text).map(Some).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unparsable /proc/{pid}/stat"),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads `/proc/<pid>/cmdline` as argv; `Ok(None)` when the pid does not exist.
pub(crate) fn read_cmdline(pid: u32) -> io::Result<Option<Vec<String>>> {
    match std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline")) {
        Ok(bytes) => Ok(Some(
            bytes
                .split(|b| *b == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect(),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a live command line is the argv we started.
///
/// Not plain equality, because the kernel and wrappers rewrite argv on the way: a script's
/// shebang prepends its interpreter (`/bin/sh ./serve.sh 8080`), and shims such as pyenv's
/// `python3` exec the real binary under its full path. So: the live argv must end with our
/// arguments, preceded by a program with the same file name as ours.
pub(crate) fn cmdline_matches(started: &[String], live: &[String]) -> bool {
    let Some((program, args)) = started.split_first() else {
        return false;
    };
    let Some(program_at) = live.len().checked_sub(started.len()) else {
        return false;
    };
    live[program_at + 1..] == *args && file_name(&live[program_at]) == file_name(program)
}

fn file_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// What became of a recorded process.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Identity {
    /// Same pid, same start time, same command: ours, still running.
    Ours,
    /// Exited (or a zombie).
    Gone,
    /// The pid is alive but is another process (pid reuse) or runs something else.
    Stranger(String),
}

/// Checks that `pid` is still the process started at `start_ticks` running `argv`.
pub(crate) fn identify(pid: u32, start_ticks: u64, argv: &[String]) -> io::Result<Identity> {
    let Some(stat) = read_stat(pid)? else {
        return Ok(Identity::Gone);
    };
    if !stat.is_running() {
        return Ok(Identity::Gone);
    }
    if stat.start_ticks != start_ticks {
        return Ok(Identity::Stranger(format!(
            "pid {pid} started at tick {}, ours at {start_ticks}",
            stat.start_ticks
        )));
    }
    let Some(live) = read_cmdline(pid)? else {
        return Ok(Identity::Gone);
    };
    if cmdline_matches(argv, &live) {
        Ok(Identity::Ours)
    } else {
        Ok(Identity::Stranger(format!(
            "pid {pid} runs {live:?}, not {argv:?}"
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn parses_stat_even_with_parentheses_and_spaces_in_the_name() {
        let text = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 300 0 0 0 2 1 0 0 20 0 1 0 \
                    987654 12345678 900 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        assert_eq!(
            parse_stat(text),
            Some(ProcStat {
                state: 'S',
                start_ticks: 987654
            })
        );
        assert_eq!(parse_stat("12 (x) Z"), None);
        assert!(
            !ProcStat {
                state: 'Z',
                start_ticks: 1
            }
            .is_running()
        );
    }

    #[test]
    fn our_own_stat_and_cmdline_are_readable() {
        let pid = std::process::id();
        let stat = read_stat(pid).unwrap().unwrap();
        assert!(stat.is_running());
        let live = read_cmdline(pid).unwrap().unwrap();
        assert_eq!(
            identify(pid, stat.start_ticks, &live).unwrap(),
            Identity::Ours
        );
        assert!(matches!(
            identify(pid, stat.start_ticks + 1, &live).unwrap(),
            Identity::Stranger(_)
        ));
        assert!(matches!(
            identify(pid, stat.start_ticks, &argv(&["other-program"])).unwrap(),
            Identity::Stranger(_)
        ));
    }

    #[test]
    fn cmdline_match_tolerates_interpreters_and_shims_only() {
        let started = argv(&["python3", "-m", "http.server", "8080"]);
        assert!(cmdline_matches(&started, &started));
        let via_pyenv = argv(&[
            "/opt/pyenv/versions/3.12/bin/python3",
            "-m",
            "http.server",
            "8080",
        ]);
        assert!(cmdline_matches(&started, &via_pyenv));
        let via_shim = argv(&[
            "bash",
            "/root/.pyenv/shims/python3",
            "-m",
            "http.server",
            "8080",
        ]);
        assert!(cmdline_matches(&started, &via_shim));
        let other_port = argv(&["python3", "-m", "http.server", "8081"]);
        assert!(!cmdline_matches(&started, &other_port));
        let other_program = argv(&["ruby", "-m", "http.server", "8080"]);
        assert!(!cmdline_matches(&started, &other_program));
        assert!(!cmdline_matches(&started, &argv(&["8080"])));
        assert!(!cmdline_matches(&[], &started));
    }
}
