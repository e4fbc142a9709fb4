//! Reading a Git repository through the `git` CLI, for the promotion gate.
//!
//! The gate reads pull-request revisions, which are attacker-controlled content, so everything
//! here fails closed and is bounded:
//!
//! * **git is configured from the command line.** Every invocation runs as
//!   `git --no-pager --no-replace-objects --no-optional-locks -c … -C <root> <command>` with the
//!   options in [`GLOBAL_ARGS`]: no pager, no fsmonitor, no hooks, no external diff, no textconv,
//!   no signature checking (which would run `gpg`), no `log.follow`, no replace objects, no
//!   network transport, and output in UTF-8. Environment variables that would point git at
//!   another repository or change how it reads pathspecs (`GIT_DIR`, `GIT_INDEX_FILE`,
//!   `GIT_LITERAL_PATHSPECS`, …) are removed; `GIT_TERMINAL_PROMPT=0`, `GIT_CONFIG_NOSYSTEM=1`,
//!   `GIT_OPTIONAL_LOCKS=0`, `GIT_NO_LAZY_FETCH=1` and `LC_ALL=C` are set. Standard input is
//!   closed unless the command needs it. The user's global configuration is still read: it is
//!   where `safe.directory` lives (actions/checkout writes it there in container jobs).
//! * **Revisions are checked before git sees them** ([`GitError::BadRevision`]) and passed after
//!   `--end-of-options`; every method that takes a revision resolves it to a commit id first, so
//!   an unknown revision is always [`GitError::UnknownRevision`] with a hint on fetching it.
//!   Paths are passed as `:(literal)` pathspecs, patterns as `:(glob)` pathspecs, after `--`.
//! * **Every command is bounded** by [`GitLimits`]: a timeout (the child is killed), a cap on
//!   captured standard output, on streamed output, on entries and on digests; standard error is
//!   kept up to [`MAX_STDERR_BYTES`] and the rest discarded. `git log -p` is streamed and only
//!   the digest map is kept.
//! * **Nothing is followed, checked out or written.** Tree entries come back with their
//!   [`EntryKind`]; a symlink is an entry whose blob holds the target, and callers decide what
//!   to do with it.
//! * **Paths are UTF-8 or an error** ([`GitError::NonUtf8Path`]), never a panic. Everything git
//!   prints is parsed with `get`, `checked_*` and `try_from`; unexpected output is
//!   [`GitError::Unparseable`].
//!
//! The timeout is implemented without reading the clock: a timer thread waits on a channel with
//! `recv_timeout` and kills the child if the main thread has not finished by then. The
//! parsers take any [`BufRead`], so they are tested on byte slices as well as on real
//! repositories. A `git` that spawns its own children (none of the commands used here does,
//! given the options above) could keep a pipe open past the kill; that is the one bound this
//! module does not enforce.

#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use thiserror::Error;

/// Default maximum number of entries [`Repo::list_files`] and [`Repo::changed_files`] return.
pub const MAX_FILES: usize = 50_000;

/// Default timeout of one git command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default cap on the standard output captured from one git command, in bytes (64 MiB).
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 64 << 20;

/// Default cap on the standard output streamed from `git log -p`, in bytes (256 MiB).
pub const DEFAULT_MAX_STREAM_BYTES: u64 = 256 << 20;

/// Default cap on the number of distinct digests [`Repo::digest_history`] collects.
pub const DEFAULT_MAX_DIGESTS: usize = 100_000;

/// How much of a command's standard error is kept for error messages (64 KiB).
pub const MAX_STDERR_BYTES: usize = 64 << 10;

/// Longest revision string accepted, in bytes.
pub const MAX_REVISION_LEN: usize = 256;

/// Options passed to git before the subcommand, on every invocation.
pub const GLOBAL_ARGS: &[&str] = &[
    "--no-pager",
    "--no-replace-objects",
    "--no-optional-locks",
    "-c",
    "core.quotePath=false",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "diff.external=",
    "-c",
    "diff.relative=false",
    "-c",
    "log.follow=false",
    "-c",
    "log.showSignature=false",
    "-c",
    "i18n.logOutputEncoding=UTF-8",
    "-c",
    "protocol.allow=never",
];

/// Environment variables removed from git's environment: each would point git at another
/// repository, object store or configuration, or change how pathspecs or diffs are read.
const REMOVED_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_EXTERNAL_DIFF",
    "GIT_DIFF_OPTS",
    "GIT_PAGER",
    "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
    "GIT_REPLACE_REF_BASE",
    "GIT_GRAFT_FILE",
    "GIT_SHALLOW_FILE",
    "GIT_QUARANTINE_PATH",
    "GIT_ATTR_SOURCE",
    "GIT_TRACE",
    "GIT_TRACE2",
    "GIT_TRACE2_EVENT",
    "GIT_TRACE2_PERF",
    "GIT_TRACE_PACKET",
    "GIT_TRACE_PERFORMANCE",
    "GIT_TRACE_SETUP",
];

/// Environment variables set for git.
const SET_ENV: &[(&str, &str)] = &[
    ("GIT_TERMINAL_PROMPT", "0"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_OPTIONAL_LOCKS", "0"),
    ("GIT_NO_LAZY_FETCH", "1"),
    ("GIT_NO_REPLACE_OBJECTS", "1"),
    ("LC_ALL", "C"),
];

/// Longest `-z` record (one tree entry or one path) accepted from git.
const MAX_RECORD_BYTES: usize = 64 << 10;

/// `git log -p` lines are scanned in pieces of at most this many bytes.
const MAX_LINE_PIECE: usize = 64 << 10;

/// Longest `cat-file --batch` header line accepted.
const MAX_HEADER_BYTES: usize = 512;

const DIGEST_PREFIX: &[u8] = b"sha256:";
const DIGEST_HEX_LEN: usize = 64;
/// `sha256:` and 64 hex digits.
const DIGEST_LEN: usize = 7 + DIGEST_HEX_LEN;

/// Bounds on what one [`Repo`] asks of git. `GitLimits::default()` is what the gate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GitLimits {
    /// Time one git command may take before it is killed (default 30 s).
    pub timeout: Duration,
    /// Standard output captured from one command, and blob content held by one
    /// [`Repo::read_blobs`] call, in bytes (default 64 MiB).
    pub max_output_bytes: u64,
    /// Standard output streamed from the `git log -p` of [`Repo::digest_history`], in bytes
    /// (default 256 MiB).
    pub max_stream_bytes: u64,
    /// Entries returned by [`Repo::list_files`] and [`Repo::changed_files`] (default
    /// [`MAX_FILES`]).
    pub max_files: usize,
    /// Distinct digests collected by [`Repo::digest_history`] (default 100 000).
    pub max_digests: usize,
}

impl Default for GitLimits {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_stream_bytes: DEFAULT_MAX_STREAM_BYTES,
            max_files: MAX_FILES,
            max_digests: DEFAULT_MAX_DIGESTS,
        }
    }
}

/// A Git work tree, read through the `git` CLI. It never checks out, writes or fetches.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
    program: OsString,
    limits: GitLimits,
}

/// What a tree entry is, from its Git mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (mode `100644`).
    File,
    /// An executable file (mode `100755`).
    Executable,
    /// A symbolic link (mode `120000`): the blob holds the link target, which is not followed.
    Symlink,
    /// A submodule (mode `160000`): the object is a commit of another repository.
    Submodule,
}

/// One entry of a commit's tree, as listed by `git ls-tree -r`.
#[derive(Debug, Clone)]
pub struct TreeEntry {
    /// Path from the top of the tree, `/`-separated, UTF-8.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Size of the blob in bytes (for a symlink, the length of its target; 0 for a submodule).
    pub size: u64,
    /// Object id (a blob, or for a submodule the commit it points at), lower-case hex.
    pub oid: String,
}

/// How a path changed between two commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeStatus {
    /// The path exists only in the new commit.
    Added,
    /// The content (or the executable bit) changed.
    Modified,
    /// The path exists only in the old commit.
    Deleted,
    /// The kind changed (file, symlink or submodule).
    TypeChanged,
}

/// One changed path, as listed by `git diff --name-status` without rename detection.
#[derive(Debug, Clone)]
pub struct Change {
    /// Path from the top of the tree, UTF-8.
    pub path: String,
    /// How it changed.
    pub status: ChangeStatus,
}

/// Who made a commit and when.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    /// Full commit id, lower-case hex.
    pub sha: String,
    /// Subject line (lossily decoded if it is not UTF-8).
    pub subject: String,
    /// Author as `Name <email>` (lossily decoded if it is not UTF-8).
    pub author: String,
    /// Committer date, RFC 3339 (`%cI`).
    pub time: String,
}

/// The image digests that appeared in a part of a repository's history.
#[derive(Debug, Clone, Default)]
pub struct DigestHistory {
    /// Every `sha256:<64 hex>` that appeared on an added line of a commit touching the
    /// pathspecs, with the newest such commit sha.
    pub digests: BTreeMap<String, String>,
    /// Commits read (at most the commit limit).
    pub commits_scanned: usize,
    /// The history walk stopped at the commit limit (so absence of a digest proves nothing).
    pub truncated: bool,
    /// The repository is shallow (history is cut; absence proves nothing).
    pub shallow: bool,
}

/// Why a repository could not be read. Messages name the input and the next step.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GitError {
    /// Occurs when the path is not inside a Git work tree (or git refuses it, for example
    /// because of `safe.directory`).
    #[error("{} is not inside a Git work tree: {detail}", path.display())]
    NotARepository {
        /// The path given to [`Repo::open`].
        path: PathBuf,
        /// What git said.
        detail: String,
    },
    /// Occurs when a revision does not name a commit in the repository.
    #[error(
        "revision {rev:?} is not a commit in this repository{}; fetch it first (for example \
         `git fetch origin <branch-or-commit>`){}",
        detail_suffix(.detail),
        shallow_hint(.shallow)
    )]
    UnknownRevision {
        /// The revision as given.
        rev: String,
        /// Whether the repository is shallow, so the commit may simply not have been fetched.
        shallow: bool,
        /// What git said (often nothing).
        detail: String,
    },
    /// Occurs when a revision is refused before git is called.
    #[error("refusing revision {rev:?}: {why}")]
    BadRevision {
        /// The revision (truncated to 100 characters).
        rev: String,
        /// Why it was refused.
        why: &'static str,
    },
    /// Occurs when a path or pathspec is refused before git is called.
    #[error("refusing path or pattern {path:?}: {why}")]
    BadPath {
        /// The path (truncated to 100 characters).
        path: String,
        /// Why it was refused.
        why: &'static str,
    },
    /// Occurs when an object id given to [`Repo::read_blobs`] is not full lower-case hex.
    #[error("refusing object id {oid:?}: expected 40 or 64 lower-case hex digits")]
    BadObjectId {
        /// The object id (truncated to 100 characters).
        oid: String,
    },
    /// Occurs when an object is not in the repository.
    #[error("object {oid} is not in the repository: fetch the revision that contains it")]
    MissingObject {
        /// The object id.
        oid: String,
    },
    /// Occurs when an object is not of the expected type (a tree where a blob was expected).
    #[error("object {oid} is a {found}, expected a {expected}")]
    WrongObjectType {
        /// The object id.
        oid: String,
        /// The type expected.
        expected: &'static str,
        /// The type found.
        found: String,
    },
    /// Occurs when a git command exits unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command (without the global options).
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// The start of its standard error.
        stderr: String,
    },
    /// Occurs when a git command does not finish in time; it was killed.
    #[error(
        "`{command}` did not finish within {secs} s and was stopped (a very large repository \
         or history may need a longer timeout)"
    )]
    Timeout {
        /// The command.
        command: String,
        /// The timeout, in seconds (rounded up).
        secs: u64,
    },
    /// Occurs when a git command prints more than the limit; it was stopped.
    #[error("`{command}` printed more than {limit} bytes and was stopped")]
    OutputTooLarge {
        /// The command.
        command: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Occurs when git cannot be started.
    #[error("could not run git ({detail}): is git installed and on PATH?")]
    Spawn {
        /// The operating system's reason.
        detail: String,
    },
    /// Occurs when a tree or a diff has more entries than the limit.
    #[error("more than {limit} files: custody reads at most {limit} entries of a tree or a diff")]
    TooManyFiles {
        /// The limit.
        limit: usize,
    },
    /// Occurs when a history holds more distinct digests than the limit.
    #[error("more than {limit} distinct digests in the history: custody keeps at most {limit}")]
    TooManyDigests {
        /// The limit.
        limit: usize,
    },
    /// Occurs when git prints a path that is not UTF-8.
    #[error(
        "path {lossy:?} is not valid UTF-8 (invalid bytes shown as U+FFFD); custody reads only \
         UTF-8 paths: rename it"
    )]
    NonUtf8Path {
        /// The path, lossily decoded.
        lossy: String,
    },
    /// Occurs when git prints something this module does not understand.
    #[error("unexpected output from `{command}`: {why}")]
    Unparseable {
        /// The command.
        command: String,
        /// What was wrong.
        why: String,
    },
    /// Occurs when reading a command's output fails.
    #[error("reading the output of `{command}` failed: {source}")]
    Io {
        /// The command.
        command: String,
        /// The I/O error.
        source: io::Error,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

fn shallow_hint(shallow: &bool) -> &'static str {
    if *shallow {
        "; this clone is shallow, so older commits are missing: check out with `fetch-depth: 0` \
         (actions/checkout) or run `git fetch --unshallow`"
    } else {
        ""
    }
}

impl Repo {
    /// Opens the work tree that contains `path` (`git rev-parse --show-toplevel`).
    ///
    /// # Errors
    /// [`GitError::NotARepository`] when `path` is not inside a work tree (a bare repository or
    /// a `.git` directory is not one), [`GitError::Spawn`] when git is not installed, and the
    /// bounds of [`GitLimits::default`].
    pub fn open(path: &Path) -> Result<Repo, GitError> {
        Repo {
            root: path.to_path_buf(),
            program: OsString::from("git"),
            limits: GitLimits::default(),
        }
        .open_top_level(path)
    }

    fn open_top_level(self, path: &Path) -> Result<Repo, GitError> {
        let done = self.run_collect(&["rev-parse", "--show-toplevel"])?;
        if !done.status.success() {
            return Err(GitError::NotARepository {
                path: path.to_path_buf(),
                detail: done.stderr,
            });
        }
        let top = utf8_path(done.value)?;
        let top = top.strip_suffix('\n').unwrap_or(&top);
        if top.is_empty() {
            return Err(GitError::NotARepository {
                path: path.to_path_buf(),
                detail: "git printed no top-level directory".to_owned(),
            });
        }
        Ok(Repo {
            root: PathBuf::from(top),
            ..self
        })
    }

    /// The same repository with other bounds.
    #[must_use]
    pub fn with_limits(self, limits: GitLimits) -> Repo {
        Repo { limits, ..self }
    }

    /// The bounds in force.
    pub fn limits(&self) -> &GitLimits {
        &self.limits
    }

    /// The top level of the work tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a revision to the full id of the commit it names
    /// (`git rev-parse --verify --quiet --end-of-options <rev>^{commit}`).
    ///
    /// # Errors
    /// [`GitError::BadRevision`] before git is called when `rev` is empty, longer than
    /// [`MAX_REVISION_LEN`] bytes, starts with `-` or contains a control character (NUL,
    /// newline, …); [`GitError::UnknownRevision`] when it names no commit (with a hint on
    /// fetching it, and on `fetch-depth: 0` when the clone is shallow).
    pub fn resolve(&self, rev: &str) -> Result<String, GitError> {
        check_revision(rev)?;
        let spec = format!("{rev}^{{commit}}");
        let args = [
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            spec.as_str(),
        ];
        let command = display_command(&args);
        let done = self.run_collect(&args)?;
        if !done.status.success() {
            if done.status.code() == Some(1) {
                // Only a hint: a failure to tell leaves it out rather than hiding the error.
                let shallow = self.is_shallow().unwrap_or(false);
                return Err(GitError::UnknownRevision {
                    rev: rev.to_owned(),
                    shallow,
                    detail: done.stderr,
                });
            }
            return Err(GitError::Failed {
                command,
                status: done.status,
                stderr: done.stderr,
            });
        }
        let out = String::from_utf8(done.value)
            .map_err(|_| unparseable(&command, "the commit id is not UTF-8".to_owned()))?;
        let oid = out.strip_suffix('\n').unwrap_or(&out);
        if !is_object_id(oid) {
            return Err(unparseable(
                &command,
                format!("expected a commit id, found {:?}", truncated(oid, 100)),
            ));
        }
        Ok(oid.to_owned())
    }

    /// Whether the repository is a shallow clone (`git rev-parse --is-shallow-repository`).
    ///
    /// # Errors
    /// [`GitError::Failed`] or [`GitError::Unparseable`] when git does not answer `true` or
    /// `false`, and the usual bounds.
    pub fn is_shallow(&self) -> Result<bool, GitError> {
        let args = ["rev-parse", "--is-shallow-repository"];
        let out = self.run_ok(&args)?;
        match out.as_slice() {
            b"true\n" => Ok(true),
            b"false\n" => Ok(false),
            other => Err(unparseable(
                &display_command(&args),
                format!(
                    "expected true or false, found {:?}",
                    truncated(&String::from_utf8_lossy(other), 100)
                ),
            )),
        }
    }

    /// Every file of a commit's tree, recursively (`git ls-tree -r -z --long --full-tree`).
    /// Symlinks and submodules are listed as such and never followed.
    ///
    /// # Errors
    /// Those of [`Repo::resolve`]; [`GitError::TooManyFiles`] past [`GitLimits::max_files`]
    /// entries; [`GitError::NonUtf8Path`] for a path that is not UTF-8;
    /// [`GitError::Unparseable`] for a mode other than the four of [`EntryKind`].
    ///
    /// # Limits
    /// At most [`GitLimits::max_files`] entries, each at most 64 KiB long.
    pub fn list_files(&self, commit: &str) -> Result<Vec<TreeEntry>, GitError> {
        let oid = self.resolve(commit)?;
        let args = [
            "ls-tree",
            "-r",
            "-z",
            "--long",
            "--full-tree",
            "--end-of-options",
            oid.as_str(),
        ];
        let command = display_command(&args);
        let max_files = self.limits.max_files;
        self.run_checked(&args, None, |out| parse_ls_tree(out, max_files, &command))
    }

    /// The content of blobs, in the order asked, from one `git cat-file --batch` process.
    /// A blob larger than `max_size` gives `None`; its content is read and discarded, never
    /// held.
    ///
    /// # Errors
    /// [`GitError::BadObjectId`] before git is called for an id that is not 40 or 64 lower-case
    /// hex digits; [`GitError::MissingObject`] for an object not in the repository;
    /// [`GitError::WrongObjectType`] for an object that is not a blob;
    /// [`GitError::OutputTooLarge`] when the blobs kept would exceed
    /// [`GitLimits::max_output_bytes`] in total.
    pub fn read_blobs(
        &self,
        oids: &[&str],
        max_size: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, GitError> {
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = Vec::new();
        for oid in oids {
            if !is_object_id(oid) {
                return Err(GitError::BadObjectId {
                    oid: truncated(oid, 100),
                });
            }
            input.extend_from_slice(oid.as_bytes());
            input.push(b'\n');
        }
        let args = ["cat-file", "--batch"];
        let command = display_command(&args);
        let max_total = self.limits.max_output_bytes;
        self.run_checked(&args, Some(input), |out| {
            read_batch(out, oids, max_size, max_total, &command)
        })
    }

    /// The paths that differ between two commits
    /// (`git diff --no-renames --no-ext-diff --name-status -z <base> <head>`). A rename is a
    /// deletion and an addition.
    ///
    /// # Errors
    /// Those of [`Repo::resolve`] for either revision; [`GitError::TooManyFiles`] past
    /// [`GitLimits::max_files`] changes; [`GitError::NonUtf8Path`].
    pub fn changed_files(&self, base: &str, head: &str) -> Result<Vec<Change>, GitError> {
        check_revision(base)?;
        check_revision(head)?;
        let base = self.resolve(base)?;
        let head = self.resolve(head)?;
        let args = [
            "diff",
            "--no-renames",
            "--no-ext-diff",
            "--no-textconv",
            "--no-color",
            "--ignore-submodules=none",
            "--name-status",
            "-z",
            "--end-of-options",
            base.as_str(),
            head.as_str(),
            "--",
        ];
        let command = display_command(&args);
        let max_files = self.limits.max_files;
        self.run_checked(&args, None, |out| {
            parse_name_status(out, max_files, &command)
        })
    }

    /// The `sha256:` digests added in the history of `rev` under `pathspecs` (glob patterns such
    /// as `envs/prod/**`), from one streamed
    /// `git log -p --format=%x00%H --max-count=<max_commits + 1> <rev> -- :(glob)<pattern>…`.
    ///
    /// A digest counts when it appears, as `sha256:` and exactly 64 lower-case hex digits not
    /// followed by a letter or digit, on an added (`+`) line inside a diff hunk; file headers
    /// (`+++ b/…`), context and removed lines do not count. The log is newest first, so each
    /// digest maps to the newest commit that added it. Merge commits show no diff (git's
    /// default), so a digest introduced only by a merge resolution is not seen; files git
    /// considers binary are not seen either. Renames are not detected: a moved file counts as
    /// added.
    ///
    /// Callers must treat `truncated` and `shallow` as "absence proves nothing".
    ///
    /// # Errors
    /// Those of [`Repo::resolve`]; [`GitError::BadPath`] for an empty list of patterns or a
    /// pattern that is empty or contains NUL; [`GitError::TooManyDigests`];
    /// [`GitError::OutputTooLarge`] past [`GitLimits::max_stream_bytes`].
    pub fn digest_history(
        &self,
        rev: &str,
        pathspecs: &[String],
        max_commits: usize,
    ) -> Result<DigestHistory, GitError> {
        if pathspecs.is_empty() {
            return Err(GitError::BadPath {
                path: String::new(),
                why: "no patterns given: name the paths whose history to read",
            });
        }
        for pattern in pathspecs {
            check_path(pattern)?;
        }
        let oid = self.resolve(rev)?;
        let shallow = self.is_shallow()?;
        let max_count = format!("--max-count={}", max_commits.saturating_add(1));
        let mut args: Vec<String> = [
            "log",
            "-p",
            "--root",
            "--no-renames",
            "--no-ext-diff",
            "--no-textconv",
            "--no-color",
            "--submodule=short",
            "--format=%x00%H",
            max_count.as_str(),
            "--end-of-options",
            oid.as_str(),
            "--",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        args.extend(pathspecs.iter().map(|pattern| format!(":(glob){pattern}")));
        let command = display_command(&args);
        let limits = self.limits;
        let mut history = self.run_checked(&args, None, |out| {
            scan_log(out, max_commits, &limits, &command)
        })?;
        history.shallow = shallow;
        Ok(history)
    }

    /// The commit a revision names: id, subject, author and committer date.
    ///
    /// # Errors
    /// Those of [`Repo::resolve`].
    pub fn commit_info(&self, rev: &str) -> Result<CommitInfo, GitError> {
        let oid = self.resolve(rev)?;
        let args = [
            "log",
            "-1",
            COMMIT_FORMAT,
            "--end-of-options",
            oid.as_str(),
            "--",
        ];
        let command = display_command(&args);
        let out = self.run_ok(&args)?;
        parse_commit_info(&out, &command)?
            .ok_or_else(|| unparseable(&command, "no commit printed".to_owned()))
    }

    /// The newest commit in the history of `rev` that changed `path` (taken literally, not as a
    /// pattern), or `None` when no commit did.
    ///
    /// # Errors
    /// Those of [`Repo::resolve`]; [`GitError::BadPath`] for an empty path or one containing NUL.
    pub fn last_commit_touching(
        &self,
        rev: &str,
        path: &str,
    ) -> Result<Option<CommitInfo>, GitError> {
        check_path(path)?;
        let oid = self.resolve(rev)?;
        let literal = format!(":(literal){path}");
        let args = [
            "log",
            "-1",
            COMMIT_FORMAT,
            "--end-of-options",
            oid.as_str(),
            "--",
            literal.as_str(),
        ];
        let command = display_command(&args);
        let out = self.run_ok(&args)?;
        parse_commit_info(&out, &command)
    }

    /// Runs git and returns its whole standard output, or [`GitError::Failed`].
    fn run_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Vec<u8>, GitError> {
        let command = display_command(args);
        let done = self.run_collect(args)?;
        if done.status.success() {
            Ok(done.value)
        } else {
            Err(GitError::Failed {
                command,
                status: done.status,
                stderr: done.stderr,
            })
        }
    }

    /// Runs git and captures its standard output up to [`GitLimits::max_output_bytes`].
    fn run_collect<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Finished<Vec<u8>>, GitError> {
        let command = display_command(args);
        let limit = self.limits.max_output_bytes;
        self.run(args, None, |out| read_capped(out, limit, &command))
    }

    /// Runs git with a parser on its standard output; a failed exit is [`GitError::Failed`],
    /// whatever the parser made of the output.
    fn run_checked<S: AsRef<OsStr>, T>(
        &self,
        args: &[S],
        stdin: Option<Vec<u8>>,
        consume: impl FnOnce(&mut BufReader<ChildStdout>) -> Result<T, GitError>,
    ) -> Result<T, GitError> {
        let command = display_command(args);
        let done = self.run(args, stdin, consume)?;
        if done.status.success() {
            Ok(done.value)
        } else {
            Err(GitError::Failed {
                command,
                status: done.status,
                stderr: done.stderr,
            })
        }
    }

    /// Runs one git command: `consume` reads its standard output on this thread, a timer
    /// thread kills it at the timeout, other threads write its standard input and keep the
    /// start of its standard error.
    fn run<S: AsRef<OsStr>, T>(
        &self,
        args: &[S],
        stdin: Option<Vec<u8>>,
        consume: impl FnOnce(&mut BufReader<ChildStdout>) -> Result<T, GitError>,
    ) -> Result<Finished<T>, GitError> {
        let command = display_command(args);
        let mut cmd = Command::new(&self.program);
        cmd.args(GLOBAL_ARGS).arg("-C").arg(&self.root);
        for arg in args {
            cmd.arg(arg.as_ref());
        }
        for name in REMOVED_ENV {
            cmd.env_remove(name);
        }
        cmd.envs(SET_ENV.iter().copied());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|err| GitError::Spawn {
            detail: format!("{}: {err}", Path::new(&self.program).display()),
        })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let stdin_pipe = child.stdin.take();
        let child = Arc::new(Mutex::new(child));

        let (cancel, cancelled) = mpsc::channel::<()>();
        let timer = {
            let child = Arc::clone(&child);
            let timeout = self.limits.timeout;
            thread::spawn(move || match cancelled.recv_timeout(timeout) {
                Err(RecvTimeoutError::Timeout) => kill_if_running(&child),
                Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
            })
        };
        let stderr_reader = stderr.map(|pipe| thread::spawn(move || read_stderr(pipe)));
        let stdin_writer = match (stdin_pipe, stdin) {
            (Some(mut pipe), Some(data)) => Some(thread::spawn(move || {
                // A write error means git stopped reading; its exit status tells why.
                let _ = pipe.write_all(&data);
            })),
            _ => None,
        };

        let value = match stdout {
            Some(pipe) => {
                let mut reader = BufReader::with_capacity(64 << 10, pipe);
                consume(&mut reader)
            }
            None => Err(GitError::Io {
                command: command.clone(),
                source: io::Error::other("no stdout pipe"),
            }),
        };
        if value.is_err() {
            let _ = lock(&child).kill();
        }
        let status = wait_for(&child);
        drop(cancel);
        let timed_out = timer.join().unwrap_or(false);
        let stderr = stderr_reader
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default();
        if let Some(writer) = stdin_writer {
            let _ = writer.join();
        }

        if timed_out {
            let secs =
                u64::try_from(self.limits.timeout.as_millis().div_ceil(1000)).unwrap_or(u64::MAX);
            return Err(GitError::Timeout { command, secs });
        }
        let value = value?;
        let status = status.map_err(|source| GitError::Io { command, source })?;
        Ok(Finished {
            value,
            status,
            stderr: clean_stderr(&stderr),
        })
    }
}

/// `%H NUL %an <%ae> NUL %cI NUL %s`: the subject last, so a NUL in it cannot shift fields.
const COMMIT_FORMAT: &str = "--format=%H%x00%an <%ae>%x00%cI%x00%s";

/// What one command left behind.
struct Finished<T> {
    value: T,
    status: ExitStatus,
    stderr: String,
}

fn lock(child: &Mutex<Child>) -> MutexGuard<'_, Child> {
    child.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Kills the child unless it has already exited; says whether it was running.
fn kill_if_running(child: &Mutex<Child>) -> bool {
    let mut child = lock(child);
    match child.try_wait() {
        Ok(Some(_)) => false,
        Ok(None) | Err(_) => {
            let _ = child.kill();
            true
        }
    }
}

/// Waits for the child without holding its lock, so the timer can still kill it.
fn wait_for(child: &Mutex<Child>) -> io::Result<ExitStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = lock(child).try_wait()? {
            return Ok(status);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Keeps the first [`MAX_STDERR_BYTES`] of standard error and discards the rest.
fn read_stderr(pipe: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut pipe = pipe;
    let limit = u64::try_from(MAX_STDERR_BYTES).unwrap_or(u64::MAX);
    let _ = (&mut pipe).take(limit).read_to_end(&mut kept);
    let _ = io::copy(&mut pipe, &mut io::sink());
    kept
}

/// Standard error as text fit for a message: lossy UTF-8, control characters (other than
/// newline and tab) replaced, trimmed.
fn clean_stderr(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn read_capped(reader: &mut impl Read, limit: u64, command: &str) -> Result<Vec<u8>, GitError> {
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|source| GitError::Io {
            command: command.to_owned(),
            source,
        })?;
    if u64::try_from(out.len()).unwrap_or(u64::MAX) > limit {
        return Err(GitError::OutputTooLarge {
            command: command.to_owned(),
            limit,
        });
    }
    Ok(out)
}

/// `git <args>` for messages, lossily decoded and truncated.
fn display_command<S: AsRef<OsStr>>(args: &[S]) -> String {
    let mut out = String::from("git");
    for arg in args {
        out.push(' ');
        out.push_str(&arg.as_ref().to_string_lossy());
    }
    clean_stderr(truncated(&out, 300).as_bytes())
}

fn truncated(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max).chain(std::iter::once('…')).collect()
    }
}

fn unparseable(command: &str, why: String) -> GitError {
    GitError::Unparseable {
        command: command.to_owned(),
        why,
    }
}

fn check_revision(rev: &str) -> Result<(), GitError> {
    let why = if rev.is_empty() {
        "it is empty"
    } else if rev.len() > MAX_REVISION_LEN {
        "it is longer than 256 bytes"
    } else if rev.starts_with('-') {
        "it starts with '-' and would be read as an option"
    } else if rev.chars().any(char::is_control) {
        "it contains a control character (NUL, newline, …)"
    } else {
        return Ok(());
    };
    Err(GitError::BadRevision {
        rev: truncated(rev, 100),
        why,
    })
}

fn check_path(path: &str) -> Result<(), GitError> {
    let why = if path.is_empty() {
        "it is empty"
    } else if path.contains('\0') {
        "it contains NUL"
    } else {
        return Ok(());
    };
    Err(GitError::BadPath {
        path: truncated(path, 100),
        why,
    })
}

/// A full object id: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits.
fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn utf8_path(bytes: Vec<u8>) -> Result<String, GitError> {
    String::from_utf8(bytes).map_err(|err| GitError::NonUtf8Path {
        lossy: String::from_utf8_lossy(err.as_bytes()).into_owned(),
    })
}

/// How [`read_piece`] stopped.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    /// Nothing was left.
    Eof,
    /// The record ended (at the delimiter, which is consumed, or at the end of the stream).
    Complete,
    /// `max` bytes were read and the record goes on.
    Partial,
}

/// Appends to `buf` the bytes up to the next `delim` (not included), at most `max` of them.
fn read_piece(
    reader: &mut impl BufRead,
    delim: u8,
    max: usize,
    buf: &mut Vec<u8>,
) -> io::Result<Piece> {
    let mut appended = 0usize;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            return Ok(if appended == 0 {
                Piece::Eof
            } else {
                Piece::Complete
            });
        }
        let room = max.saturating_sub(appended).min(available.len());
        let window = available.get(..room).unwrap_or(available);
        if let Some(end) = window.iter().position(|&b| b == delim) {
            buf.extend_from_slice(window.get(..end).unwrap_or(window));
            reader.consume(end.saturating_add(1));
            return Ok(Piece::Complete);
        }
        let taken = window.len();
        buf.extend_from_slice(window);
        reader.consume(taken);
        appended = appended.saturating_add(taken);
        if appended >= max {
            return Ok(Piece::Partial);
        }
    }
}

/// Reads one NUL-terminated record; `None` at the end of the output.
fn read_record(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    command: &str,
) -> Result<Option<()>, GitError> {
    buf.clear();
    match read_piece(reader, 0, MAX_RECORD_BYTES, buf).map_err(|source| GitError::Io {
        command: command.to_owned(),
        source,
    })? {
        Piece::Eof => Ok(None),
        Piece::Complete => Ok(Some(())),
        Piece::Partial => Err(unparseable(
            command,
            "a record is longer than 64 KiB".to_owned(),
        )),
    }
}

/// Parses `git ls-tree -r -z --long` output: `<mode> <type> <oid> <size>\t<path>\0`.
fn parse_ls_tree(
    reader: &mut impl BufRead,
    max_files: usize,
    command: &str,
) -> Result<Vec<TreeEntry>, GitError> {
    let mut entries = Vec::new();
    let mut record = Vec::new();
    while read_record(reader, &mut record, command)?.is_some() {
        if entries.len() >= max_files {
            return Err(GitError::TooManyFiles { limit: max_files });
        }
        entries.push(parse_tree_entry(&record, command)?);
    }
    Ok(entries)
}

fn parse_tree_entry(record: &[u8], command: &str) -> Result<TreeEntry, GitError> {
    let bad = |why: &str| {
        unparseable(
            command,
            format!(
                "{why} in entry {:?}",
                truncated(&String::from_utf8_lossy(record), 200)
            ),
        )
    };
    let tab = record
        .iter()
        .position(|&b| b == b'\t')
        .ok_or_else(|| bad("no tab"))?;
    let meta = record.get(..tab).ok_or_else(|| bad("no tab"))?;
    let path = record
        .get(tab.saturating_add(1)..)
        .ok_or_else(|| bad("no path"))?;
    let meta = std::str::from_utf8(meta).map_err(|_| bad("non-UTF-8 mode"))?;
    let mut fields = meta.split(' ').filter(|field| !field.is_empty());
    let (Some(mode), Some(object_type), Some(oid), Some(size), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(bad("expected mode, type, object id and size"));
    };
    let kind = match (mode, object_type) {
        ("100644", "blob") => EntryKind::File,
        ("100755", "blob") => EntryKind::Executable,
        ("120000", "blob") => EntryKind::Symlink,
        ("160000", "commit") => EntryKind::Submodule,
        _ => return Err(bad(&format!("unknown mode {mode} {object_type}"))),
    };
    if !is_object_id(oid) {
        return Err(bad("bad object id"));
    }
    let size = match (&kind, size) {
        (EntryKind::Submodule, "-") => 0,
        (EntryKind::Submodule, _) => return Err(bad("a submodule with a size")),
        (_, size) => size.parse::<u64>().map_err(|_| bad("bad size"))?,
    };
    if path.is_empty() {
        return Err(bad("empty path"));
    }
    Ok(TreeEntry {
        path: utf8_path(path.to_vec())?,
        kind,
        size,
        oid: oid.to_owned(),
    })
}

/// Parses `git diff --name-status -z` output: `<status>\0<path>\0` pairs.
fn parse_name_status(
    reader: &mut impl BufRead,
    max_files: usize,
    command: &str,
) -> Result<Vec<Change>, GitError> {
    let mut changes = Vec::new();
    let mut status = Vec::new();
    let mut path = Vec::new();
    while read_record(reader, &mut status, command)?.is_some() {
        let status = match status.as_slice() {
            b"A" => ChangeStatus::Added,
            b"M" => ChangeStatus::Modified,
            b"D" => ChangeStatus::Deleted,
            b"T" => ChangeStatus::TypeChanged,
            other => {
                return Err(unparseable(
                    command,
                    format!(
                        "unknown status {:?}",
                        truncated(&String::from_utf8_lossy(other), 20)
                    ),
                ));
            }
        };
        if read_record(reader, &mut path, command)?.is_none() || path.is_empty() {
            return Err(unparseable(command, "a status without a path".to_owned()));
        }
        if changes.len() >= max_files {
            return Err(GitError::TooManyFiles { limit: max_files });
        }
        changes.push(Change {
            path: utf8_path(path.clone())?,
            status,
        });
    }
    Ok(changes)
}

/// Reads `git cat-file --batch` answers for `oids`, in order:
/// `<oid> <type> <size>\n<content>\n` or `<oid> missing\n`.
fn read_batch(
    reader: &mut impl BufRead,
    oids: &[&str],
    max_size: u64,
    max_total: u64,
    command: &str,
) -> Result<Vec<Option<Vec<u8>>>, GitError> {
    let io_err = |source: io::Error| GitError::Io {
        command: command.to_owned(),
        source,
    };
    let mut blobs = Vec::with_capacity(oids.len());
    let mut held = 0u64;
    let mut header = Vec::new();
    for &oid in oids {
        header.clear();
        match read_piece(reader, b'\n', MAX_HEADER_BYTES, &mut header).map_err(io_err)? {
            Piece::Complete => {}
            Piece::Eof => {
                return Err(unparseable(
                    command,
                    format!("output ended before object {oid}"),
                ));
            }
            Piece::Partial => {
                return Err(unparseable(command, "a header line is too long".to_owned()));
            }
        }
        let header = String::from_utf8_lossy(&header);
        let fields: Vec<&str> = header.split(' ').collect();
        let (found_oid, object_type, size) = match fields.as_slice() {
            [_, "missing" | "ambiguous"] => {
                return Err(GitError::MissingObject {
                    oid: oid.to_owned(),
                });
            }
            [found_oid, object_type, size] => (*found_oid, *object_type, *size),
            _ => {
                return Err(unparseable(
                    command,
                    format!("bad header {:?}", truncated(&header, 200)),
                ));
            }
        };
        if found_oid != oid {
            return Err(unparseable(
                command,
                format!("asked for {oid}, got {}", truncated(found_oid, 100)),
            ));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| unparseable(command, format!("bad size {:?}", truncated(size, 40))))?;
        if object_type != "blob" {
            return Err(GitError::WrongObjectType {
                oid: oid.to_owned(),
                expected: "blob",
                found: truncated(object_type, 40),
            });
        }
        if size > max_size {
            let skipped =
                io::copy(&mut reader.by_ref().take(size), &mut io::sink()).map_err(io_err)?;
            if skipped != size {
                return Err(unparseable(command, format!("object {oid} ended early")));
            }
            blobs.push(None);
        } else {
            held = held.saturating_add(size);
            if held > max_total {
                return Err(GitError::OutputTooLarge {
                    command: command.to_owned(),
                    limit: max_total,
                });
            }
            let capacity = usize::try_from(size).unwrap_or(0).min(1 << 20);
            let mut content = Vec::with_capacity(capacity);
            reader
                .by_ref()
                .take(size)
                .read_to_end(&mut content)
                .map_err(io_err)?;
            if u64::try_from(content.len()).unwrap_or(u64::MAX) != size {
                return Err(unparseable(command, format!("object {oid} ended early")));
            }
            blobs.push(Some(content));
        }
        let mut newline = [0u8; 1];
        reader.read_exact(&mut newline).map_err(io_err)?;
        if newline != *b"\n" {
            return Err(unparseable(
                command,
                format!("no newline after object {oid}"),
            ));
        }
    }
    let mut rest = [0u8; 1];
    if reader.read(&mut rest).map_err(io_err)? != 0 {
        return Err(unparseable(
            command,
            "output after the last object".to_owned(),
        ));
    }
    Ok(blobs)
}

/// Scans streamed `git log -p --format=%x00%H` output for digests on added lines.
///
/// Lines are read in pieces of at most [`MAX_LINE_PIECE`] bytes; the last [`DIGEST_LEN`] bytes
/// of a piece are scanned again with the next one, so a digest across a piece boundary is found
/// and one at the very end of a piece is judged only once its next byte is known.
fn scan_log(
    reader: &mut impl BufRead,
    max_commits: usize,
    limits: &GitLimits,
    command: &str,
) -> Result<DigestHistory, GitError> {
    let mut history = DigestHistory::default();
    let mut commits = 0usize;
    let mut current: Option<String> = None;
    let mut in_hunk = false;
    // Some(added) while the rest of a long line is being read.
    let mut continuing: Option<bool> = None;
    let mut streamed = 0u64;
    let mut buf = Vec::new();
    loop {
        let before = buf.len();
        let piece =
            read_piece(reader, b'\n', MAX_LINE_PIECE, &mut buf).map_err(|source| GitError::Io {
                command: command.to_owned(),
                source,
            })?;
        if piece == Piece::Eof {
            break;
        }
        let read = u64::try_from(buf.len().saturating_sub(before)).unwrap_or(u64::MAX);
        streamed = streamed.saturating_add(read).saturating_add(1);
        if streamed > limits.max_stream_bytes {
            return Err(GitError::OutputTooLarge {
                command: command.to_owned(),
                limit: limits.max_stream_bytes,
            });
        }
        if commits == 0 && !matches!(buf.first(), None | Some(0)) {
            return Err(unparseable(
                command,
                "output does not start with a commit line".to_owned(),
            ));
        }
        let added = match continuing {
            Some(added) => added,
            None => match buf.first() {
                Some(0) => {
                    let sha = buf
                        .get(1..)
                        .and_then(|sha| std::str::from_utf8(sha).ok())
                        .unwrap_or("");
                    if piece != Piece::Complete || !is_object_id(sha) {
                        return Err(unparseable(
                            command,
                            "a commit line without a commit id".to_owned(),
                        ));
                    }
                    commits = commits.saturating_add(1);
                    if commits > max_commits {
                        history.truncated = true;
                    } else {
                        current = Some(sha.to_owned());
                    }
                    in_hunk = false;
                    buf.clear();
                    continue;
                }
                Some(b'@') if buf.starts_with(b"@@") => {
                    in_hunk = true;
                    false
                }
                Some(b'+') if in_hunk => true,
                Some(b' ' | b'-' | b'\\') if in_hunk => false,
                _ => {
                    in_hunk = false;
                    false
                }
            },
        };
        if added && !history.truncated {
            let commit = current
                .as_ref()
                .ok_or_else(|| unparseable(command, "a diff line before any commit".to_owned()))?;
            for digest in find_digests(&buf, piece == Piece::Complete) {
                if !history.digests.contains_key(digest) {
                    if history.digests.len() >= limits.max_digests {
                        return Err(GitError::TooManyDigests {
                            limit: limits.max_digests,
                        });
                    }
                    history.digests.insert(digest.to_owned(), commit.clone());
                }
            }
        }
        if piece == Piece::Partial {
            continuing = Some(added);
            let keep_from = buf.len().saturating_sub(DIGEST_LEN);
            buf.drain(..keep_from);
        } else {
            continuing = None;
            buf.clear();
        }
    }
    history.commits_scanned = commits.min(max_commits);
    Ok(history)
}

/// Every `sha256:<64 lower-case hex>` in `line` not followed by an ASCII letter or digit.
/// When the line is not complete, a match at its very end is left for the next piece.
fn find_digests(line: &[u8], complete: bool) -> Vec<&str> {
    let mut found = Vec::new();
    let mut from = 0usize;
    while let Some(rest) = line.get(from..) {
        let Some(offset) = rest
            .windows(DIGEST_PREFIX.len())
            .position(|w| w == DIGEST_PREFIX)
        else {
            break;
        };
        let start = from.saturating_add(offset);
        let end = start.saturating_add(DIGEST_LEN);
        from = start.saturating_add(1);
        let Some(candidate) = line.get(start..end) else {
            break;
        };
        let hex = candidate.get(DIGEST_PREFIX.len()..).unwrap_or_default();
        if !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            continue;
        }
        match line.get(end) {
            Some(next) if next.is_ascii_alphanumeric() => continue,
            None if !complete => continue,
            _ => {}
        }
        if let Ok(digest) = std::str::from_utf8(candidate) {
            found.push(digest);
        }
    }
    found
}

/// Parses `log -1` output in [`COMMIT_FORMAT`]; `None` when git printed nothing.
fn parse_commit_info(out: &[u8], command: &str) -> Result<Option<CommitInfo>, GitError> {
    if out.is_empty() {
        return Ok(None);
    }
    let out = out.strip_suffix(b"\n").unwrap_or(out);
    let mut fields = out.splitn(4, |&b| b == 0);
    let (Some(sha), Some(author), Some(time), Some(subject)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(unparseable(
            command,
            "expected commit id, author, date and subject".to_owned(),
        ));
    };
    let sha = std::str::from_utf8(sha)
        .ok()
        .filter(|sha| is_object_id(sha))
        .ok_or_else(|| {
            unparseable(
                command,
                format!(
                    "bad commit id {:?}",
                    truncated(&String::from_utf8_lossy(sha), 100)
                ),
            )
        })?;
    let time = String::from_utf8_lossy(time).into_owned();
    if time.is_empty() {
        return Err(unparseable(command, "no commit date".to_owned()));
    }
    Ok(Some(CommitInfo {
        sha: sha.to_owned(),
        subject: String::from_utf8_lossy(subject).into_owned(),
        author: String::from_utf8_lossy(author).into_owned(),
        time,
    }))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const DIGEST_A: &str =
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const DIGEST_B: &str =
        "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const DIGEST_C: &str =
        "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    const DIGEST_D: &str =
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("custody-git-{name}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Runs the test's own git (not through [`Repo`]), isolated from the machine's config.
    fn git_at(dir: &Path, args: &[&str], date: Option<&str>) -> String {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(dir).args(args);
        cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.test")
            .env("GIT_COMMITTER_NAME", "Test Committer")
            .env("GIT_COMMITTER_EMAIL", "committer@example.test");
        if let Some(date) = date {
            cmd.env("GIT_AUTHOR_DATE", date)
                .env("GIT_COMMITTER_DATE", date);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }

    struct Fixture {
        dir: TempDir,
        commits: usize,
    }

    impl Fixture {
        fn new(name: &str) -> Fixture {
            let dir = TempDir::new(name);
            git_at(&dir.0, &["init", "-q", "-b", "main"], None);
            Fixture { dir, commits: 0 }
        }

        fn path(&self) -> &Path {
            &self.dir.0
        }

        fn repo(&self) -> Repo {
            Repo::open(self.path()).unwrap()
        }

        fn git(&self, args: &[&str]) -> String {
            git_at(self.path(), args, None)
        }

        fn write(&self, rel: &str, content: &str) {
            let path = self.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }

        fn remove(&self, rel: &str) {
            fs::remove_file(self.path().join(rel)).unwrap();
        }

        /// Commits everything, one minute after the previous commit; returns the commit id.
        fn commit(&mut self, message: &str) -> String {
            self.commits += 1;
            let date = format!("2026-01-02T03:{:02}:00Z", self.commits);
            git_at(self.path(), &["add", "-A"], None);
            git_at(
                self.path(),
                &["commit", "-q", "--allow-empty", "-m", message],
                Some(&date),
            );
            self.git(&["rev-parse", "HEAD"])
        }
    }

    /// A [`Repo`] whose `git` is a shell script, to test the runner's bounds.
    fn fake_repo(dir: &TempDir, script: &str, limits: GitLimits) -> Repo {
        let program = dir.0.join("fake-git");
        fs::write(&program, format!("#!/bin/sh\n{script}\n")).unwrap();
        fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
        Repo {
            root: dir.0.clone(),
            program: program.into_os_string(),
            limits,
        }
    }

    fn patterns(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| (*p).to_owned()).collect()
    }

    // ---- open ----

    #[test]
    fn open_finds_the_top_level_from_a_subdirectory() {
        let mut fx = Fixture::new("open");
        fx.write("a/b/c.txt", "x\n");
        fx.commit("one");
        let repo = Repo::open(&fx.path().join("a/b")).unwrap();
        assert_eq!(repo.root(), fs::canonicalize(fx.path()).unwrap());
        assert_eq!(repo.limits(), &GitLimits::default());
    }

    #[test]
    fn open_a_non_repository_is_an_error() {
        let dir = TempDir::new("not-a-repo");
        let err = Repo::open(&dir.0).unwrap_err();
        assert!(matches!(err, GitError::NotARepository { .. }), "{err:?}");
        assert!(
            err.to_string().contains("not inside a Git work tree"),
            "{err}"
        );
    }

    #[test]
    fn open_a_missing_directory_is_an_error() {
        let dir = TempDir::new("missing");
        let err = Repo::open(&dir.0.join("nope")).unwrap_err();
        assert!(matches!(err, GitError::NotARepository { .. }), "{err:?}");
    }

    #[test]
    fn open_a_bare_repository_or_git_dir_is_an_error() {
        let dir = TempDir::new("bare");
        git_at(&dir.0, &["init", "-q", "--bare", "-b", "main"], None);
        assert!(matches!(
            Repo::open(&dir.0),
            Err(GitError::NotARepository { .. })
        ));
        let fx = Fixture::new("gitdir");
        assert!(matches!(
            Repo::open(&fx.path().join(".git")),
            Err(GitError::NotARepository { .. })
        ));
    }

    // ---- resolve ----

    #[test]
    fn resolve_branch_short_sha_and_parent() {
        let mut fx = Fixture::new("resolve");
        fx.write("a.txt", "1\n");
        let first = fx.commit("one");
        fx.write("a.txt", "2\n");
        let second = fx.commit("two");
        fx.git(&["tag", "v1", &first]);
        let repo = fx.repo();
        assert_eq!(repo.resolve("main").unwrap(), second);
        assert_eq!(repo.resolve("HEAD").unwrap(), second);
        assert_eq!(repo.resolve("HEAD~1").unwrap(), first);
        assert_eq!(repo.resolve(&first[..10]).unwrap(), first);
        assert_eq!(repo.resolve(&first).unwrap(), first);
        assert_eq!(repo.resolve("v1").unwrap(), first);
        assert_eq!(repo.resolve("refs/heads/main").unwrap(), second);
    }

    #[test]
    fn resolve_unknown_revisions() {
        let mut fx = Fixture::new("unknown");
        fx.write("a.txt", "1\n");
        fx.commit("one");
        let repo = fx.repo();
        for rev in [
            "no-such-branch",
            "HEAD~1",
            "0000000000000000000000000000000000000000",
            "HEAD:a.txt",
            "HEAD^{tree}",
        ] {
            let err = repo.resolve(rev).unwrap_err();
            match &err {
                GitError::UnknownRevision {
                    rev: found,
                    shallow,
                    ..
                } => {
                    assert_eq!(found, rev);
                    assert!(!shallow);
                }
                other => panic!("{rev}: {other:?}"),
            }
            let message = err.to_string();
            assert!(message.contains("git fetch"), "{message}");
            assert!(!message.contains("fetch-depth"), "{message}");
        }
    }

    #[test]
    fn resolve_refuses_bad_revisions_without_calling_git() {
        let dir = TempDir::new("bad-rev");
        // A git that does not exist: any call would be a Spawn error.
        let repo = Repo {
            root: dir.0.clone(),
            program: OsString::from("/nonexistent/custody-test/git"),
            limits: GitLimits::default(),
        };
        let long = "a".repeat(MAX_REVISION_LEN + 1);
        for rev in [
            "-x",
            "--output=/tmp/owned",
            "",
            "main\nHEAD",
            "main\0",
            "main\r",
            "a\u{1b}[31m",
            long.as_str(),
        ] {
            let err = repo.resolve(rev).unwrap_err();
            assert!(
                matches!(err, GitError::BadRevision { .. }),
                "{rev:?}: {err:?}"
            );
            for method in [
                repo.list_files(rev).map(|_| ()),
                repo.changed_files(rev, "main").map(|_| ()),
                repo.changed_files("main", rev).map(|_| ()),
                repo.digest_history(rev, &patterns(&["x"]), 5).map(|_| ()),
                repo.commit_info(rev).map(|_| ()),
                repo.last_commit_touching(rev, "x").map(|_| ()),
            ] {
                assert!(
                    matches!(method, Err(GitError::BadRevision { .. })),
                    "{rev:?}: {method:?}"
                );
            }
        }
        // At exactly the limit the revision is accepted, so git is called (and is missing).
        let at_limit = "a".repeat(MAX_REVISION_LEN);
        assert!(matches!(
            repo.resolve(&at_limit),
            Err(GitError::Spawn { .. })
        ));
        let err = repo.resolve("main").unwrap_err();
        assert!(matches!(err, GitError::Spawn { .. }), "{err:?}");
        assert!(err.to_string().contains("is git installed"), "{err}");
    }

    // ---- list_files ----

    #[test]
    fn list_files_reports_kinds_sizes_and_paths() {
        let mut fx = Fixture::new("list");
        fx.write("plain.txt", "hello\n");
        fx.write("bin/run.sh", "#!/bin/sh\n");
        fs::set_permissions(
            fx.path().join("bin/run.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        fx.write("envs/prod/my values ü.yaml", "image: x\n");
        std::os::unix::fs::symlink("../../etc/passwd", fx.path().join("link")).unwrap();
        let first = fx.commit("one");
        fx.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{first},vendor/sub"),
        ]);
        fx.git(&["commit", "-q", "-m", "submodule"]);
        let repo = fx.repo();
        let entries = repo.list_files("HEAD").unwrap();
        let find = |path: &str| {
            entries
                .iter()
                .find(|e| e.path == path)
                .unwrap_or_else(|| panic!("{path}: {entries:?}"))
        };
        assert_eq!(entries.len(), 5, "{entries:?}");
        assert_eq!(find("plain.txt").kind, EntryKind::File);
        assert_eq!(find("plain.txt").size, 6);
        assert_eq!(
            find("plain.txt").oid,
            fx.git(&["rev-parse", "HEAD:plain.txt"])
        );
        assert_eq!(find("bin/run.sh").kind, EntryKind::Executable);
        assert_eq!(find("link").kind, EntryKind::Symlink);
        assert_eq!(find("link").size, "../../etc/passwd".len() as u64);
        assert_eq!(find("envs/prod/my values ü.yaml").kind, EntryKind::File);
        let sub = find("vendor/sub");
        assert_eq!(sub.kind, EntryKind::Submodule);
        assert_eq!(sub.size, 0);
        assert_eq!(sub.oid, first);
        // The symlink's blob is its target: read, never followed.
        let target = repo.read_blobs(&[find("link").oid.as_str()], 1024).unwrap();
        assert_eq!(target, vec![Some(b"../../etc/passwd".to_vec())]);
        // An earlier commit has fewer entries.
        assert_eq!(repo.list_files(&first).unwrap().len(), 4);
    }

    #[test]
    fn list_files_stops_at_the_file_limit() {
        let mut fx = Fixture::new("many");
        for i in 0..4 {
            fx.write(&format!("f{i}"), "x\n");
        }
        fx.commit("four files");
        let limits = |max_files| GitLimits {
            max_files,
            ..GitLimits::default()
        };
        let repo = fx.repo();
        assert_eq!(
            repo.clone()
                .with_limits(limits(4))
                .list_files("HEAD")
                .unwrap()
                .len(),
            4
        );
        let err = repo.with_limits(limits(3)).list_files("HEAD").unwrap_err();
        assert!(
            matches!(err, GitError::TooManyFiles { limit: 3 }),
            "{err:?}"
        );
    }

    #[test]
    fn list_files_rejects_a_non_utf8_path() {
        let mut fx = Fixture::new("non-utf8");
        let name = OsStr::from_bytes(b"bad\xffname.yaml");
        fs::write(fx.path().join(name), "x\n").unwrap();
        fx.commit("bad name");
        let err = fx.repo().list_files("HEAD").unwrap_err();
        match &err {
            GitError::NonUtf8Path { lossy } => assert_eq!(lossy, "bad\u{FFFD}name.yaml"),
            other => panic!("{other:?}"),
        }
        let err = fx
            .repo()
            .changed_files("4b825dc642cb6eb9a060e54bf8d69288fbee4904", "HEAD");
        // The empty tree is not a commit.
        assert!(
            matches!(err, Err(GitError::UnknownRevision { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn ls_tree_parser_rejects_unexpected_entries() {
        let oid = "78981922613b2afb6025042ff6bd878ac1994e85";
        let ok = format!("100644 blob {oid}       2\ta\0");
        let parsed = parse_ls_tree(&mut ok.as_bytes(), 10, "t").unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].path, "a");
        for bad in [
            format!("040000 tree {oid}       -\tdir\0"),
            format!("100664 blob {oid}       2\ta\0"),
            format!("100644 blob {oid}       2 a\0"),
            format!("100644 blob {oid}       x\ta\0"),
            format!("100644 blob {oid}      -2\ta\0"),
            format!("160000 commit {oid}       7\ta\0"),
            format!("100644 blob {}       2\ta\0", &oid[..20]),
            format!("100644 blob {oid}       2\t\0"),
            format!("100644 blob {oid} 2 extra\ta\0"),
            format!(
                "100644 blob {oid}       2\t{}\0",
                "p".repeat(MAX_RECORD_BYTES)
            ),
        ] {
            let err = parse_ls_tree(&mut bad.as_bytes(), 10, "t").unwrap_err();
            assert!(
                matches!(err, GitError::Unparseable { .. }),
                "{bad:?}: {err:?}"
            );
        }
    }

    // ---- read_blobs ----

    #[test]
    fn read_blobs_returns_content_in_order_and_skips_large_blobs() {
        let mut fx = Fixture::new("blobs");
        fx.write("small", "small\n");
        fx.write("other", "other content\n");
        fx.write("large", &"L".repeat(10_000));
        fx.write("empty", "");
        fx.commit("blobs");
        let repo = fx.repo();
        let oid = |path: &str| fx.git(&["rev-parse", &format!("HEAD:{path}")]);
        let (small, other, large, empty) = (oid("small"), oid("other"), oid("large"), oid("empty"));
        let blobs = repo
            .read_blobs(&[&small, &large, &other, &small, &empty], 100)
            .unwrap();
        assert_eq!(
            blobs,
            vec![
                Some(b"small\n".to_vec()),
                None,
                Some(b"other content\n".to_vec()),
                Some(b"small\n".to_vec()),
                Some(Vec::new()),
            ]
        );
        // At the limit the blob is kept, one byte under it is not.
        assert_eq!(
            repo.read_blobs(&[&large], 10_000).unwrap(),
            vec![Some("L".repeat(10_000).into_bytes())]
        );
        assert_eq!(repo.read_blobs(&[&large], 9_999).unwrap(), vec![None]);
        assert!(repo.read_blobs(&[], 1).unwrap().is_empty());
    }

    #[test]
    fn read_blobs_errors() {
        let mut fx = Fixture::new("blob-errors");
        fx.write("dir/a", "a\n");
        let commit = fx.commit("one");
        let repo = fx.repo();
        let blob = fx.git(&["rev-parse", "HEAD:dir/a"]);
        let tree = fx.git(&["rev-parse", "HEAD:dir"]);
        let missing = "1111111111111111111111111111111111111111";

        let err = repo.read_blobs(&[&blob, missing], 100).unwrap_err();
        assert!(
            matches!(&err, GitError::MissingObject { oid } if oid == missing),
            "{err:?}"
        );
        let err = repo.read_blobs(&[&tree], 100).unwrap_err();
        assert!(
            matches!(&err, GitError::WrongObjectType { found, .. } if found == "tree"),
            "{err:?}"
        );
        let err = repo.read_blobs(&[&commit], 100).unwrap_err();
        assert!(
            matches!(&err, GitError::WrongObjectType { found, .. } if found == "commit"),
            "{err:?}"
        );
        let upper = blob.to_uppercase();
        for bad in [
            "HEAD:dir/a",
            &blob[..12],
            upper.as_str(),
            "",
            "-",
            &format!("{blob}\n{blob}"),
        ] {
            let err = repo.read_blobs(&[bad], 100).unwrap_err();
            assert!(
                matches!(err, GitError::BadObjectId { .. }),
                "{bad:?}: {err:?}"
            );
        }
        // The total kept is bounded by max_output_bytes.
        let tight = repo.with_limits(GitLimits {
            max_output_bytes: 3,
            ..GitLimits::default()
        });
        let err = tight.read_blobs(&[&blob, &blob], 100).unwrap_err();
        assert!(
            matches!(err, GitError::OutputTooLarge { limit: 3, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn batch_parser_rejects_malformed_output() {
        let oid = "78981922613b2afb6025042ff6bd878ac1994e85";
        let good = format!("{oid} blob 2\nab\n");
        assert_eq!(
            read_batch(&mut good.as_bytes(), &[oid], 10, 100, "t").unwrap(),
            vec![Some(b"ab".to_vec())]
        );
        for bad in [
            format!("{oid} blob 3\nab\n"),
            format!("{oid} blob 2\nabX"),
            format!("{oid} blob 2\nab"),
            format!("{oid} blob x\nab\n"),
            format!("{oid} blob\nab\n"),
            format!("{} blob 2\nab\n", "2".repeat(40)),
            format!("{oid} blob 2\nab\nextra"),
            String::new(),
            format!("{} blob 2\n", "x".repeat(600)),
        ] {
            let err = read_batch(&mut bad.as_bytes(), &[oid], 10, 100, "t").unwrap_err();
            assert!(
                matches!(err, GitError::Unparseable { .. } | GitError::Io { .. }),
                "{bad:?}: {err:?}"
            );
        }
        // A large blob that is cut short is an error too, not a silent None.
        let cut = format!("{oid} blob 50\nab");
        assert!(read_batch(&mut cut.as_bytes(), &[oid], 10, 100, "t").is_err());
    }

    // ---- changed_files ----

    #[test]
    fn changed_files_add_modify_delete_and_type_change() {
        let mut fx = Fixture::new("changes");
        fx.write("keep.txt", "1\n");
        fx.write("gone.txt", "1\n");
        fx.write("becomes-link", "1\n");
        fx.write("same.txt", "1\n");
        let base = fx.commit("base");
        fx.write("keep.txt", "2\n");
        fx.remove("gone.txt");
        fx.remove("becomes-link");
        std::os::unix::fs::symlink("same.txt", fx.path().join("becomes-link")).unwrap();
        fx.write("new dir/naïve file.yaml", "x\n");
        let head = fx.commit("head");
        let repo = fx.repo();
        let mut changes: Vec<(String, ChangeStatus)> = repo
            .changed_files(&base, &head)
            .unwrap()
            .into_iter()
            .map(|c| (c.path, c.status))
            .collect();
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            changes,
            vec![
                ("becomes-link".to_owned(), ChangeStatus::TypeChanged),
                ("gone.txt".to_owned(), ChangeStatus::Deleted),
                ("keep.txt".to_owned(), ChangeStatus::Modified),
                ("new dir/naïve file.yaml".to_owned(), ChangeStatus::Added),
            ]
        );
        assert!(repo.changed_files(&head, &head).unwrap().is_empty());
        assert!(repo.changed_files("HEAD", "main").unwrap().is_empty());
        // Reversed, additions become deletions.
        let reversed = repo.changed_files(&head, &base).unwrap();
        assert!(
            reversed
                .iter()
                .any(|c| c.path == "gone.txt" && c.status == ChangeStatus::Added)
        );
        // A rename is a deletion and an addition.
        fx.git(&["mv", "keep.txt", "moved.txt"]);
        let moved = fx.commit("move");
        let renamed = repo.changed_files(&head, &moved).unwrap();
        assert_eq!(renamed.len(), 2, "{renamed:?}");
        assert!(matches!(
            repo.changed_files("nope", &head),
            Err(GitError::UnknownRevision { .. })
        ));
        let limited = repo.with_limits(GitLimits {
            max_files: 3,
            ..GitLimits::default()
        });
        assert!(matches!(
            limited.changed_files(&base, &head),
            Err(GitError::TooManyFiles { limit: 3 })
        ));
    }

    #[test]
    fn name_status_parser_rejects_unexpected_output() {
        assert_eq!(
            parse_name_status(&mut &b"M\0a\0D\0b\0"[..], 10, "t")
                .unwrap()
                .len(),
            2
        );
        for bad in [&b"R100\0a\0b\0"[..], b"M\0", b"M\0\0", b"X\0a\0", b"\0a\0"] {
            let err = parse_name_status(&mut &bad[..], 10, "t").unwrap_err();
            assert!(
                matches!(err, GitError::Unparseable { .. }),
                "{bad:?}: {err:?}"
            );
        }
        let err = parse_name_status(&mut &b"A\0ok\0A\0bad\xff\0"[..], 10, "t").unwrap_err();
        assert!(matches!(err, GitError::NonUtf8Path { .. }), "{err:?}");
    }

    // ---- digest_history ----

    #[test]
    fn digest_history_reports_added_digests_with_the_newest_commit() {
        let mut fx = Fixture::new("digests");
        fx.write("envs/prod/values.yaml", &format!("image: app@{DIGEST_A}\n"));
        fx.write("envs/dev/values.yaml", &format!("image: app@{DIGEST_C}\n"));
        let first = fx.commit("add A");
        fx.write("envs/prod/values.yaml", &format!("image: app@{DIGEST_B}\n"));
        let second = fx.commit("replace A with B");
        fx.write("README.md", &format!("{DIGEST_D}\n"));
        fx.commit("outside the pathspecs");
        let repo = fx.repo();
        let history = repo
            .digest_history("HEAD", &patterns(&["envs/prod/**"]), 10)
            .unwrap();
        let expected: BTreeMap<String, String> = [
            (DIGEST_A.to_owned(), first.clone()),
            (DIGEST_B.to_owned(), second.clone()),
        ]
        .into();
        assert_eq!(history.digests, expected);
        assert_eq!(history.commits_scanned, 2);
        assert!(!history.truncated);
        assert!(!history.shallow);
        // Several patterns, and a pattern with a wildcard in the middle.
        let both = repo
            .digest_history("main", &patterns(&["envs/*/values.yaml"]), 10)
            .unwrap();
        assert_eq!(both.digests.len(), 3);
        assert_eq!(both.digests[DIGEST_C], first);
        let both = repo
            .digest_history("main", &patterns(&["envs/dev/**", "README.md"]), 10)
            .unwrap();
        assert_eq!(
            both.digests.keys().collect::<Vec<_>>(),
            vec![DIGEST_D, DIGEST_C]
        );
        // From an older revision, later commits do not count.
        let old = repo
            .digest_history(&first, &patterns(&["envs/prod/**"]), 10)
            .unwrap();
        assert_eq!(old.digests.keys().collect::<Vec<_>>(), vec![DIGEST_A]);
        // A pattern that matches nothing.
        let none = repo
            .digest_history("HEAD", &patterns(&["nothing/**"]), 10)
            .unwrap();
        assert!(none.digests.is_empty());
        assert_eq!(none.commits_scanned, 0);
    }

    #[test]
    fn digest_history_maps_a_readded_digest_to_the_newest_commit() {
        let mut fx = Fixture::new("readd");
        fx.write("prod.yaml", &format!("image: app@{DIGEST_A}\n"));
        fx.commit("A");
        fx.write("prod.yaml", &format!("image: app@{DIGEST_B}\n"));
        fx.commit("B");
        fx.write("prod.yaml", &format!("image: app@{DIGEST_A}\n"));
        let third = fx.commit("A again");
        let history = fx
            .repo()
            .digest_history("HEAD", &patterns(&["prod.yaml"]), 10)
            .unwrap();
        assert_eq!(history.digests[DIGEST_A], third);
        assert_eq!(history.commits_scanned, 3);
    }

    #[test]
    fn digest_history_ignores_context_removed_and_malformed_digests() {
        let mut fx = Fixture::new("not-added");
        let upper = DIGEST_A.to_uppercase().replace("SHA256", "sha256");
        fx.write(
            "prod.yaml",
            &format!("keep: {DIGEST_A}\nremove: {DIGEST_B}\nupper: {upper}\nlong: {DIGEST_C}0\nshort: {}\n", &DIGEST_D[..70]),
        );
        fx.commit("one");
        fx.write(
            "prod.yaml",
            &format!("keep: {DIGEST_A}\nupper: {upper}\nlong: {DIGEST_C}0\nnew: x\n"),
        );
        let second = fx.commit("two");
        let repo = fx.repo();
        // Only the second commit is read: A is context there, B removed, the others malformed.
        let history = repo
            .digest_history("HEAD", &patterns(&["prod.yaml"]), 1)
            .unwrap();
        assert!(history.digests.is_empty(), "{:?}", history.digests);
        assert!(history.truncated);
        assert_eq!(history.commits_scanned, 1);
        // With the first commit, A and B were added there.
        let history = repo
            .digest_history("HEAD", &patterns(&["prod.yaml"]), 2)
            .unwrap();
        assert_eq!(
            history.digests.keys().collect::<Vec<_>>(),
            vec![DIGEST_A, DIGEST_B]
        );
        assert_ne!(history.digests[DIGEST_A], second);
    }

    #[test]
    fn digest_history_truncates_at_the_commit_limit() {
        let mut fx = Fixture::new("truncate");
        let mut commits = Vec::new();
        for digest in [DIGEST_A, DIGEST_B, DIGEST_C] {
            fx.write("prod.yaml", &format!("image: app@{digest}\n"));
            commits.push(fx.commit(digest));
        }
        let repo = fx.repo();
        let pathspecs = patterns(&["prod.yaml"]);
        let two = repo.digest_history("HEAD", &pathspecs, 2).unwrap();
        assert!(two.truncated);
        assert_eq!(two.commits_scanned, 2);
        assert_eq!(
            two.digests.keys().collect::<Vec<_>>(),
            vec![DIGEST_B, DIGEST_C]
        );
        let three = repo.digest_history("HEAD", &pathspecs, 3).unwrap();
        assert!(!three.truncated);
        assert_eq!(three.commits_scanned, 3);
        assert_eq!(three.digests[DIGEST_A], commits[0]);
        let zero = repo.digest_history("HEAD", &pathspecs, 0).unwrap();
        assert!(zero.truncated);
        assert_eq!(zero.commits_scanned, 0);
        assert!(zero.digests.is_empty());
        let limited = repo.with_limits(GitLimits {
            max_digests: 2,
            ..GitLimits::default()
        });
        assert!(matches!(
            limited.digest_history("HEAD", &pathspecs, 3),
            Err(GitError::TooManyDigests { limit: 2 })
        ));
        assert!(
            matches!(limited.digest_history("HEAD", &pathspecs, 2), Ok(h) if h.digests.len() == 2)
        );
    }

    #[test]
    fn digest_history_refuses_bad_pathspecs() {
        let mut fx = Fixture::new("bad-pathspec");
        fx.write("a", "x\n");
        fx.commit("one");
        let repo = fx.repo();
        for bad in [vec![], vec![""], vec!["ok", "a\0b"]] {
            let err = repo.digest_history("HEAD", &patterns(&bad), 5).unwrap_err();
            assert!(matches!(err, GitError::BadPath { .. }), "{bad:?}: {err:?}");
        }
        assert!(matches!(
            repo.digest_history("nope", &patterns(&["a"]), 5),
            Err(GitError::UnknownRevision { .. })
        ));
        // A pattern is one pathspec: magic inside it is part of the glob, not a new signature.
        let odd = repo
            .digest_history("HEAD", &patterns(&[":(exclude)a", "-p"]), 5)
            .unwrap();
        assert_eq!(odd.commits_scanned, 0);
    }

    #[test]
    fn log_scanner_handles_long_lines_and_piece_boundaries() {
        let sha = "b116d99dbcb30fe733090910349a31b31d2e24a0";
        let limits = GitLimits::default();
        let scan = |text: &[u8]| scan_log(&mut &text[..], 10, &limits, "t");
        let hunk = |line: &str| {
            format!("\0{sha}\n\ndiff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n{line}\n")
        };

        // A digest at every offset around the first piece boundary is found exactly when valid.
        for pad in (MAX_LINE_PIECE - DIGEST_LEN - 3)..(MAX_LINE_PIECE + 3) {
            let line = format!("+{}{DIGEST_A}", " ".repeat(pad - 1));
            let history = scan(hunk(&line).as_bytes()).unwrap();
            assert_eq!(
                history.digests.keys().collect::<Vec<_>>(),
                vec![DIGEST_A],
                "pad {pad}"
            );
            let line = format!("+{}{DIGEST_A}f", " ".repeat(pad - 1));
            let history = scan(hunk(&line).as_bytes()).unwrap();
            assert!(
                history.digests.is_empty(),
                "pad {pad}: a 65-digit value is not a digest"
            );
        }
        // A long removed or context line never counts, however long.
        let line = format!("-{}{DIGEST_A}", "x".repeat(3 * MAX_LINE_PIECE));
        assert!(scan(hunk(&line).as_bytes()).unwrap().digests.is_empty());
        // File headers and lines outside hunks do not count; `+++` content inside a hunk does.
        let header = format!(
            "\0{sha}\n\ndiff --git a/{DIGEST_A} b/{DIGEST_A}\n--- a/{DIGEST_A}\n+++ b/{DIGEST_A}\n"
        );
        assert!(scan(header.as_bytes()).unwrap().digests.is_empty());
        assert_eq!(
            scan(hunk(&format!("+++{DIGEST_B}")).as_bytes())
                .unwrap()
                .digests
                .len(),
            1
        );
        // Several digests on one line, and a digest right after another.
        let two =
            scan(hunk(&format!("+{DIGEST_A},{DIGEST_B} {DIGEST_C}{DIGEST_D}")).as_bytes()).unwrap();
        // C is followed by a letter (so it is not a digest); D, right after it, is.
        assert_eq!(
            two.digests.keys().collect::<Vec<_>>(),
            vec![DIGEST_D, DIGEST_A, DIGEST_B]
        );
        // Malformed streams are errors.
        for bad in [
            b"+sha256:x\n".to_vec(),
            format!("\0{}\n", &sha[..10]).into_bytes(),
            format!("\0{sha}x\n").into_bytes(),
            format!("@@ -1 +1 @@\n+{DIGEST_A}\n").into_bytes(),
        ] {
            let err = scan(&bad).unwrap_err();
            assert!(
                matches!(err, GitError::Unparseable { .. }),
                "{bad:?}: {err:?}"
            );
        }
        // The streamed bytes are bounded.
        let tight = GitLimits {
            max_stream_bytes: 100,
            ..GitLimits::default()
        };
        let err = scan_log(&mut hunk(&"+x".repeat(100)).as_bytes(), 10, &tight, "t").unwrap_err();
        assert!(
            matches!(err, GitError::OutputTooLarge { limit: 100, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn find_digests_needs_64_lower_hex_digits_and_a_boundary() {
        assert_eq!(find_digests(DIGEST_A.as_bytes(), true), vec![DIGEST_A]);
        assert!(find_digests(DIGEST_A.as_bytes(), false).is_empty());
        assert_eq!(
            find_digests(format!("{DIGEST_A}\"").as_bytes(), false),
            vec![DIGEST_A]
        );
        assert!(find_digests(format!("{DIGEST_A}g").as_bytes(), true).is_empty());
        assert!(find_digests(&DIGEST_A.as_bytes()[..70], true).is_empty());
        assert!(find_digests(b"sha256:sha256:", true).is_empty());
        assert_eq!(
            find_digests(format!("sha256:{DIGEST_A}").as_bytes(), true),
            vec![DIGEST_A]
        );
    }

    // ---- shallow ----

    #[test]
    fn shallow_clone_is_reported_and_hinted() {
        let mut fx = Fixture::new("shallow-src");
        fx.write("prod.yaml", &format!("image: app@{DIGEST_A}\n"));
        fx.commit("one");
        fx.write("prod.yaml", &format!("image: app@{DIGEST_B}\n"));
        let head = fx.commit("two");
        let dir = TempDir::new("shallow");
        let url = format!("file://{}", fx.path().display());
        git_at(
            &dir.0,
            &["clone", "-q", "--depth", "1", &url, "clone"],
            None,
        );
        let repo = Repo::open(&dir.0.join("clone")).unwrap();
        assert!(repo.is_shallow().unwrap());
        assert!(!fx.repo().is_shallow().unwrap());
        assert_eq!(repo.resolve("HEAD").unwrap(), head);
        let history = repo
            .digest_history("HEAD", &patterns(&["prod.yaml"]), 10)
            .unwrap();
        assert!(history.shallow);
        assert!(!history.truncated);
        // The cut commit shows its whole tree as added: B is there, A (older) is not.
        assert_eq!(history.digests.keys().collect::<Vec<_>>(), vec![DIGEST_B]);
        let err = repo.resolve("HEAD~1").unwrap_err();
        assert!(
            matches!(err, GitError::UnknownRevision { shallow: true, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("fetch-depth: 0"), "{err}");
    }

    // ---- commits ----

    #[test]
    fn commit_info_and_last_commit_touching() {
        let mut fx = Fixture::new("commits");
        fx.write("envs/prod/my values ü.yaml", "1\n");
        fx.write("*.txt", "literal star\n");
        let first = fx.commit("first: add prod");
        fx.write("a.txt", "1\n");
        let second = fx.commit("second touches a.txt — ünïcode");
        let repo = fx.repo();

        let info = repo.commit_info("HEAD").unwrap();
        assert_eq!(info.sha, second);
        assert_eq!(info.subject, "second touches a.txt — ünïcode");
        assert_eq!(info.author, "Test Author <author@example.test>");
        assert!(
            info.time.starts_with("2026-01-02T03:02:00"),
            "{}",
            info.time
        );

        let touched = repo
            .last_commit_touching("HEAD", "envs/prod/my values ü.yaml")
            .unwrap()
            .unwrap();
        assert_eq!(touched.sha, first);
        assert_eq!(touched.subject, "first: add prod");
        assert_eq!(
            repo.last_commit_touching("HEAD", "a.txt")
                .unwrap()
                .unwrap()
                .sha,
            second
        );
        // Literal: `*.txt` is the file of that name, not a pattern matching a.txt.
        assert_eq!(
            repo.last_commit_touching("HEAD", "*.txt")
                .unwrap()
                .unwrap()
                .sha,
            first
        );
        // A directory prefix counts as touching.
        assert_eq!(
            repo.last_commit_touching("HEAD", "envs")
                .unwrap()
                .unwrap()
                .sha,
            first
        );
        assert!(
            repo.last_commit_touching("HEAD", "never/there.yaml")
                .unwrap()
                .is_none()
        );
        assert!(
            repo.last_commit_touching(&first, "a.txt")
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            repo.last_commit_touching("HEAD", ""),
            Err(GitError::BadPath { .. })
        ));
        assert!(matches!(
            repo.last_commit_touching("HEAD", "a\0b"),
            Err(GitError::BadPath { .. })
        ));
        assert!(matches!(
            repo.last_commit_touching("nope", "a.txt"),
            Err(GitError::UnknownRevision { .. })
        ));
        assert!(matches!(
            repo.commit_info("nope"),
            Err(GitError::UnknownRevision { .. })
        ));
    }

    #[test]
    fn commit_info_parser_rejects_unexpected_output() {
        let sha = "b116d99dbcb30fe733090910349a31b31d2e24a0";
        let ok = format!("{sha}\0A <a@b>\02026-01-02T03:04:05Z\0subject \0 with NUL\n");
        let info = parse_commit_info(ok.as_bytes(), "t").unwrap().unwrap();
        assert_eq!(info.subject, "subject \0 with NUL");
        assert!(parse_commit_info(b"", "t").unwrap().is_none());
        for bad in [
            format!("{sha}\0A\n"),
            format!("{}\0A\0T\0S\n", &sha[..8]),
            format!("{sha}\0A\0\0S\n"),
        ] {
            assert!(
                matches!(
                    parse_commit_info(bad.as_bytes(), "t"),
                    Err(GitError::Unparseable { .. })
                ),
                "{bad:?}"
            );
        }
    }

    // ---- the runner's bounds ----

    #[test]
    fn a_command_that_hangs_is_killed_at_the_timeout() {
        let dir = TempDir::new("timeout");
        let limits = GitLimits {
            timeout: Duration::from_millis(300),
            ..GitLimits::default()
        };
        let repo = fake_repo(&dir, "exec sleep 30", limits);
        let err = repo.is_shallow().unwrap_err();
        assert!(matches!(&err, GitError::Timeout { secs: 1, .. }), "{err:?}");
        // Streaming commands are bounded too.
        let repo = fake_repo(
            &dir,
            "printf '\\000b116d99dbcb30fe733090910349a31b31d2e24a0\\n'; exec sleep 30",
            limits,
        );
        let err = repo
            .run_checked(&["log"], None, |out| scan_log(out, 10, &limits, "t"))
            .unwrap_err();
        assert!(matches!(&err, GitError::Timeout { .. }), "{err:?}");
        // And so are commands reading standard input.
        let repo = fake_repo(&dir, "exec sleep 30", limits);
        let err = repo
            .run_checked(&["cat-file"], Some(vec![b'x'; 1 << 20]), |out| {
                read_capped(out, 10, "t")
            })
            .unwrap_err();
        assert!(matches!(&err, GitError::Timeout { .. }), "{err:?}");
    }

    #[test]
    fn output_past_the_cap_stops_the_command() {
        let dir = TempDir::new("too-large");
        let limits = GitLimits {
            max_output_bytes: 1000,
            ..GitLimits::default()
        };
        let repo = fake_repo(&dir, "exec yes", limits);
        let err = repo.is_shallow().unwrap_err();
        assert!(
            matches!(&err, GitError::OutputTooLarge { limit: 1000, .. }),
            "{err:?}"
        );
        let repo = fake_repo(&dir, "printf 'true\\n'", limits);
        assert!(repo.is_shallow().unwrap());
    }

    #[test]
    fn failures_keep_the_start_of_stderr() {
        let dir = TempDir::new("failed");
        let repo = fake_repo(&dir, "echo 'fatal: boom' >&2; exit 3", GitLimits::default());
        let err = repo.is_shallow().unwrap_err();
        match &err {
            GitError::Failed {
                command,
                status,
                stderr,
            } => {
                assert_eq!(command, "git rev-parse --is-shallow-repository");
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr, "fatal: boom");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("fatal: boom"), "{err}");
        // Megabytes of stderr are read (so git never blocks) but only the start is kept, and
        // control characters cannot reach a terminal.
        let repo = fake_repo(
            &dir,
            "printf '\\033[31mred' >&2; head -c 3000000 /dev/zero | tr '\\000' e >&2; exit 1",
            GitLimits::default(),
        );
        let err = repo.is_shallow().unwrap_err();
        match &err {
            GitError::Failed { stderr, .. } => {
                assert!(stderr.len() > MAX_STDERR_BYTES / 2, "{}", stderr.len());
                assert!(stderr.len() <= MAX_STDERR_BYTES + 16, "{}", stderr.len());
                assert!(!stderr.contains('\u{1b}'));
                assert!(stderr.starts_with("\u{FFFD}[31mred"), "{:?}", &stderr[..20]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unexpected_answers_are_errors_not_guesses() {
        let dir = TempDir::new("unparseable");
        let repo = fake_repo(&dir, "echo maybe", GitLimits::default());
        assert!(matches!(
            repo.is_shallow(),
            Err(GitError::Unparseable { .. })
        ));
        let repo = fake_repo(&dir, "echo not-a-sha", GitLimits::default());
        assert!(matches!(
            repo.resolve("main"),
            Err(GitError::Unparseable { .. })
        ));
        let repo = fake_repo(&dir, "exit 1", GitLimits::default());
        // rev-parse exits 1 for an unknown revision; the shallow hint's own failure is ignored.
        assert!(matches!(
            repo.resolve("main"),
            Err(GitError::UnknownRevision { shallow: false, .. })
        ));
        let repo = fake_repo(&dir, "exit 128", GitLimits::default());
        assert!(matches!(repo.resolve("main"), Err(GitError::Failed { .. })));
        // A git that exits 0 without a top level is not a repository.
        let repo = fake_repo(&dir, "echo", GitLimits::default());
        assert!(matches!(
            repo.open_top_level(&dir.0),
            Err(GitError::NotARepository { .. })
        ));
    }

    #[test]
    fn git_is_called_with_the_hardening_options() {
        let dir = TempDir::new("args");
        let repo = fake_repo(
            &dir,
            "printf '%s\\n' \"$@\" > \"$0.args\"; env > \"$0.env\"; echo true",
            GitLimits::default(),
        );
        assert!(repo.is_shallow().unwrap());
        let args = fs::read_to_string(dir.0.join("fake-git.args")).unwrap();
        let args: Vec<&str> = args.lines().collect();
        let mut expected: Vec<String> = GLOBAL_ARGS.iter().map(|a| (*a).to_owned()).collect();
        expected.extend(["-C".to_owned(), dir.0.display().to_string()]);
        expected.extend(["rev-parse".to_owned(), "--is-shallow-repository".to_owned()]);
        assert_eq!(args, expected);
        let env = fs::read_to_string(dir.0.join("fake-git.env")).unwrap();
        for (name, value) in SET_ENV {
            assert!(
                env.lines().any(|line| line == format!("{name}={value}")),
                "{name} not set"
            );
        }
    }
}
