//! The POSIX shell snippets pacha runs on a node, built in one place. Every value goes in
//! through [`quote`], and no file content or script is ever part of a snippet (they travel on
//! standard input); the node needs only `sh` and coreutils (`stat`, `sha256sum`, `head`,
//! `mkdir`, `mv`, `chmod`, `chown`, `sync`), and uses `tar` and `setsid` when they are there
//! (one process for all the files; an apply in the lock's session as a group of its own).
//! Commands run once per step, not once per file, wherever coreutils allow it.
//!
//! Node-side state lives under `<root>/var/lib/pacha`: the lock (the file `lock`, which also
//! names the running apply), the journal of the push being placed (`journal`, read
//! back to record an interrupted push), the list of paths whose post scripts are still due
//! (`pending-post`), and what the lock's holder runs (`held.run`, `held.in`, `held.err`; the
//! input is emptied as soon as its snippet ends, and again when the lock goes).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use pacha_core::{Apply, Mode, NodePath, Placement, PlannedDir, PlannedScript, Stage};

use crate::shell::quote;

/// How long a push waits for another pacha to release a node by default.
pub(crate) const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Exit status of a snippet that found the node locked by another pacha.
pub(crate) const EXIT_LOCKED: i32 = 75;
/// Exit status of an apply whose pre script failed (nothing placed).
pub(crate) const EXIT_PRE_FAILED: i32 = 70;
/// Exit status of an apply whose post script failed (files placed).
pub(crate) const EXIT_POST_FAILED: i32 = 71;
/// Exit status of an apply whose `validate` command refused a staged file (nothing renamed).
pub(crate) const EXIT_INVALID: i32 = 72;
/// Exit status of an apply whose post script or health check failed and that put the node
/// back as it was.
pub(crate) const EXIT_ROLLED_BACK: i32 = 73;

/// The longest snippet sent as one command: sshd hands it to the login shell as one argument,
/// and Linux limits one argument to 128 KiB.
pub(crate) const MAX_SCRIPT: usize = 96 * 1024;

/// The node's state folder under `root`.
pub(crate) fn state_dir(root: &str) -> String {
    NodePath::parse("/var/lib/pacha")
        .map(|path| path.under_root(root))
        .unwrap_or_else(|_| format!("{}/var/lib/pacha", root.trim_end_matches('/')))
}

/// Lines that set `S` to the node's state folder (the lock, the due post scripts): `<root>/var/
/// lib/pacha` when this user may write there, else a folder in the user's own state folder
/// (`$XDG_STATE_HOME` or `~/.local/state`), so that a user who is not root can push too.
pub(crate) fn state_setup(root: &str) -> String {
    format!(
        "S={}
[ -d \"$S\" ] && [ -w \"$S\" ] || {{ mkdir -p -m 700 \"$S\" 2>/dev/null && [ -w \"$S\" ]; }} || \
{{ S={}; mkdir -p -m 700 \"$S\" && [ -w \"$S\" ]; }} || \
{{ echo \"cannot create a state folder for pacha ($S)\" >&2; exit 1; }}\n",
        quote(&state_dir(root)),
        fallback_state_dir(root)
    )
}

/// Lines that set `S` to where [`state_setup`] would put the state folder, creating nothing:
/// for reading only (a dry run shows post scripts left due without touching the node).
pub(crate) fn state_lookup(root: &str) -> String {
    format!(
        "S={}\n[ -d \"$S\" ] && [ -w \"$S\" ] || S={}\n",
        quote(&state_dir(root)),
        fallback_state_dir(root)
    )
}

/// The state folder in the SSH user's own state folder, as a shell word.
fn fallback_state_dir(root: &str) -> String {
    let key = pacha_core::ContentHash::of(root.as_bytes()).short(12);
    format!("\"${{XDG_STATE_HOME:-$HOME/.local/state}}/pacha/{key}\"")
}

// The lock is a file made by this snippet's process (`set -C`: the shell creates it with
// O_EXCL, no process and one file), holding its pid (what a pacha finding the lock reads to
// see whether its holder is alive), this push's nonce (what an apply checks) and who holds it
// (what a pacha that finds it locked reports), one per line. An apply running under the lock
// appends `apply <pid>` and, when it ends, `applied <pid>`; a script it runs under `timeout`
// (a process group of its own) `script <group>` and `scripted`. Before the lock goes (pacha
// gone, or a dead holder taken over), the apply and script group it names are stopped, so no
// apply ever runs unlocked; the held runner's input file is emptied too (`release`).
// A plain placement in the lock holder's own foreground leaves its staging folders (empty once
// their files are renamed) to the lock's release, one `rm` for them and the lock, instead of
// one of its own: it names them first in a `staged` line (shell words, a newline in a name
// spelled `$nl`), and the runner removes them before the next frame (`unstage`; then
// `unstaged`), so that frame's staging folders of the same names can be made.
// A dead holder's lock is taken over (`take_over`) in place first: its apply is stopped while
// the lock still keeps every other pacha out (and only if the lock read is still that
// holder's: a lock is never rewritten, so its first line names the one it is); then it is moved
// aside, so that of two pachas taking it over at once one wins, and one that moved the other's
// fresh lock puts it back. A holder lets go of the lock only while it is its own (`mine`).
// An older pacha's lock is a folder (`lock/pid` with the same lines, or its holder in
// `lock/holder`; `lock/apply`, `lock/script`): read the same way, and taken over the same way
// when its holder is gone.
const LOCK: &str = r#"alive() { [ -d "/proc/$1" ] || kill -0 "$1" 2>/dev/null; }
stop_apply() {
  a=; g=; h=
  if [ -d "$1" ]; then
    { read -r h < "$1/pid"; } 2>/dev/null
    { read -r a < "$1/apply"; } 2>/dev/null
    { read -r g < "$1/script"; } 2>/dev/null
  else
    { read -r h; read -r k; read -r k; while read -r k v; do
      case $k in apply) a=$v; g= ;; applied) [ "$v" != "$a" ] || a= ;; script) g=$v ;; scripted) g= ;; esac
    done; } < "$1" 2>/dev/null
  fi
  [ -z "${2-}" ] || [ "$h" = "$2" ] || return 0
  [ -n "$a" ] || return 0
  kill -TERM -"$a" 2>/dev/null || kill -TERM "$a" 2>/dev/null
  [ -z "$g" ] || kill -TERM -"$g" 2>/dev/null
  j=0; while { kill -0 "$a" || { [ -n "$g" ] && kill -0 -"$g"; }; } 2>/dev/null && [ "$j" -lt 300 ]; do sleep 0.1 2>/dev/null || sleep 1; j=$((j + 1)); done
  kill -KILL -"$a" 2>/dev/null || kill -KILL "$a" 2>/dev/null
  [ -z "$g" ] || kill -KILL -"$g" 2>/dev/null
  return 0
}
nl='
'
unstage() {
  l=$1; u=${2-}; set --
  [ -d "$l" ] || { read -r k; read -r k; read -r k; while IFS= read -r k; do
    case $k in "staged "*) command eval "set -- \"\$@\" ${k#staged }" ;; unstaged) set -- ;; esac
  done; } < "$l" 2>/dev/null
  if [ -n "$u" ]; then rm -rf -- "$@" "$l"
  elif [ "$#" -gt 0 ]; then rm -rf -- "$@"; printf 'unstaged\n' >> "$l"; fi
}
release() { unstage "$1" with; [ ! -s "$S/held.in" ] || : >| "$S/held.in"; }
mine() { l=; { read -r l; read -r l; } < "$S/lock" 2>/dev/null; [ "$l" = "$N" ]; }
take_over() {
  stop_apply "$S/lock" "$1"
  d="$S/lock.$N"
  mv -f -- "$S/lock" "$d" 2>/dev/null || return 0
  p=; f="$d"; [ ! -d "$f" ] || f="$f/pid"; { read -r p < "$f"; } 2>/dev/null
  if [ "$p" = "$1" ]; then release "$d"; return 0; fi
  if [ -d "$d" ]; then [ -e "$S/lock" ] || mv -f -- "$d" "$S/lock"; else ln -- "$d" "$S/lock" 2>/dev/null; fi
  rm -rf -- "$d"
}
i=0
set -C
until { printf '%s\n%s\n%s\n' "$$" "$N" "$HOLDER" > "$S/lock"; } 2>/dev/null; do
  f="$S/lock"; [ ! -d "$f" ] || f="$f/pid"
  pid=; { read -r pid < "$f"; } 2>/dev/null
  if [ -n "$pid" ] && ! alive "$pid"; then take_over "$pid"; continue; fi
  i=$((i + 1))
  if [ "$i" -gt "$W" ]; then
    holder=; { read -r holder; read -r holder; read -r holder; } < "$f" 2>/dev/null
    [ -n "$holder" ] || { read -r holder < "$S/lock/holder"; } 2>/dev/null
    printf 'LOCKED %s\n' "${holder:-another pacha}"; exit 75
  fi
  sleep 0.05 2>/dev/null || sleep 1
done
set +C
trap 'if mine; then stop_apply "$S/lock"; release "$S/lock"; fi' EXIT
trap 'exit 1' HUP INT TERM PIPE
"#;

// Links and folders are rare: each is reported where it is met (`L <bytes>` then the target,
// `D <stat>`); regular files are stat-ed and hashed together after the kinds.
const CLASSIFY: &str = r#"c=
for p do
  shift
  if [ -L "$p" ]; then c="${c}L"; t=$(readlink -- "$p"; echo x); t=${t%x}; t=${t%?}
    printf 'L %s\n' "$(printf %s "$t" | wc -c)"; printf '%s\n' "$t"
  elif [ -f "$p" ] && [ ! -r "$p" ]; then c="${c}U"
  elif [ -f "$p" ]; then c="${c}F"; set -- "$@" "$p"
  elif [ -d "$p" ]; then c="${c}D"; printf 'D '; stat -c '%a:%u:%g:%s:%U:%G' -- "$p" || exit 91
  elif [ -e "$p" ]; then c="${c}O"
  else c="${c}M"; fi
done
printf 'C %s\n' "$c"
if [ "$#" -gt 0 ]; then
  stat -c '%a:%u:%g:%s:%U:%G' -- "$@" || exit 91
  sha256sum -- "$@" || exit 92
"#;

/// Exit status of a snippet that found a folder under the root that is a symlink leading out
/// of it.
pub(crate) const EXIT_SYMLINKED: i32 = 77;

/// The folders between the node's root and `paths` (and its state folder), under the root:
/// what [`guard`] checks. None when the root is `/`: there every folder is the node's own.
pub(crate) fn guarded_folders(paths: &[NodePath], root: &str) -> Vec<String> {
    if root.trim_end_matches('/').is_empty() {
        return Vec::new();
    }
    let mut folders = std::collections::BTreeSet::new();
    let state = NodePath::parse("/var/lib/pacha/lock").ok();
    for path in paths.iter().chain(&state) {
        let mut parent = path.parent();
        while let Some(folder) = parent {
            if folder.as_str() == "/" || !folders.insert(folder.under_root(root)) {
                break;
            }
            parent = folder.parent();
        }
    }
    folders.into_iter().collect()
}

/// Lines that stop the snippet (printing `SYMLINK <folder>`, exit status 77) when one of
/// `folders` is a symlink that leads out of the root: nothing is read or written through it,
/// so a chroot or image target never reaches the machine it is built on.
pub(crate) fn guard(root: &str, folders: &[String]) -> String {
    if folders.is_empty() {
        return String::new();
    }
    format!(
        "for d in {}; do if [ -L \"$d\" ]; then t=$(readlink -f -- \"$d\"); case \"$t/\" in {}/*) ;; *) printf 'SYMLINK %s\\n' \"$d\"; exit {EXIT_SYMLINKED};; esac; fi; done\n",
        join_quoted(folders),
        quote(root.trim_end_matches('/'))
    )
}

/// How the held runner runs a snippet and answers (both ways alike; `$1` the held files'
/// prefix, `$2` the nonce): its input and stderr from the held files, then `EXIT-<nonce>
/// <status> <stderr bytes>` and the stderr, the input emptied.
macro_rules! answer {
    () => {
        r#"< "$1.in" 2> "$1.err"; s=$?; : > "$1.in"; e=0; [ -s "$1.err" ] && e=$(wc -c < "$1.err"); printf "\nEXIT-%s %s %s\n" "$2" "$s" "$e"; [ "$e" = 0 ] || cat "$1.err""#
    };
}

/// The end of a snippet that holds the lock: until its input is closed, it runs the snippets
/// pacha sends, each as `RUN-<nonce> <script bytes> <input bytes> <how>` and those bytes, and
/// answers with the snippet's output, `\nEXIT-<nonce> <status> <stderr bytes>` and its stderr.
/// The snippet, its input (file contents, secrets too) and its stderr are kept private in the
/// state folder (`held.run`, `held.in`, `held.err`: the same files push after push, so none is
/// made anew), the input emptied as soon as the snippet ends.
/// An apply so run costs no session of its own. `<how>` is `B` or `F`:
/// - `B`: where `setsid` is, it runs in the background as a process group of its own (its id
///   given to the apply as `$1`, for the lock's `apply` line), so that when the input ends (pacha killed,
///   connection dropped) the lock's `stop_apply` stops it at once, as it stops an apply in a
///   session of its own (the group's first process outlives the apply, so that `stop_apply`
///   waits for the apply's own cleanup). The snippet is read by a subshell of that first
///   process (`.`), which costs a fork but not a second `sh` to start. Without `setsid`, the
///   same in the foreground.
/// - `F`, for a plain placement (no script, nothing it waits for: it ends on its own once its
///   input, already all here, is placed): in the foreground, in a subshell of this shell (no
///   `setsid`, no `sh` to start), its own process id (read from `/proc/self/stat`, a builtin
///   `read`) given as `$1` so that a pacha taking over a dead holder's lock can still stop it.
const HELD_RUNNER: &str = concat!(
    r#"H='trap : HUP INT TERM; ( r="$1.run"; set -- "$$"; . "$r" ) "#,
    answer!(),
    r#"'
here() { ( r="$1.run"; p=; { read -r p _ < /proc/self/stat; } 2>/dev/null; set -- "$p"; . "$r" ) "#,
    answer!(),
    r#"; }
if command -v setsid > /dev/null 2>&1; then B=1; else B=; fi
umask 077
while read -r w a b m; do
  [ "$w" = "RUN-$N" ] || break
  head -c "$a" > "$S/held.run" || break
  if [ "$b" = 0 ]; then : > "$S/held.in"; else head -c "$b" > "$S/held.in" || break; fi
  unstage "$S/lock"
  if [ "$m" = F ]; then here "$S/held" "$N"; elif [ -n "$B" ]; then setsid sh -c "$H" sh "$S/held" "$N" & else sh -c "$H" sh "$S/held" "$N"; fi
done
"#
);

/// The snippet that reads `paths` (absolute on the node, root included): for each, its kind;
/// for regular files, mode, owner, group, size and SHA-256 (and contents when asked); then the
/// pending post scripts. With `lock`, it first takes the node's lock (waiting up to `lock_wait`
/// for another pacha to finish) and then holds it until its standard input is closed.
pub(crate) fn inspect(
    root: &str,
    nonce: &str,
    paths: &[String],
    guarded: &[String],
    contents: bool,
    lock: Option<&str>,
    lock_wait: Duration,
) -> String {
    let mut script = String::with_capacity(1024 + paths.iter().map(|p| p.len() + 3).sum::<usize>());
    let _ = writeln!(script, "set -u\nN={}\nprintf 'BEGIN-%s\\n' \"$N\"", quote(nonce));
    script.push_str(&guard(root, guarded));
    if let Some(holder) = lock {
        script.push_str(&state_setup(root));
        // One line of the lock file.
        let holder: String = holder.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let _ = writeln!(script, "W={}\nHOLDER={}", lock_wait.as_millis() / 50, quote(&holder));
        script.push_str(LOCK);
    } else {
        script.push_str(&state_lookup(root));
    }
    // Framed by an end marker with this push's nonce rather than by a length: one process
    // (`cat`) each, not two.
    script.push_str(
        "[ -f \"$S/pending-post\" ] && { printf 'P\\n'; cat \"$S/pending-post\"; printf '\\nP-%s\\n' \"$N\"; }\n",
    );
    script.push_str("[ -f \"$S/journal\" ] && { printf 'J\\n'; cat \"$S/journal\"; printf '\\nJ-%s\\n' \"$N\"; }\n");
    script.push_str("set --");
    for path in paths {
        script.push(' ');
        script.push_str(&quote(path));
    }
    script.push('\n');
    script.push_str(CLASSIFY);
    if contents {
        script.push_str("  cat -- \"$@\" || exit 93\n");
    }
    script.push_str("fi\nprintf 'END-%s\\n' \"$N\"\n");
    if lock.is_some() {
        // Hold the lock until pacha closes our input (or the connection drops), running what
        // pacha sends meanwhile.
        script.push_str(HELD_RUNNER);
    }
    script
}

/// The snippet that lists every regular file and symlink below `folders` (absolute on the node, root
/// included), NUL-separated; folders that do not exist or cannot be read are passed over.
pub(crate) fn find(root: &str, folders: &[String], guarded: &[String], nonce: &str) -> String {
    format!(
        "printf 'BEGIN-%s\\n' {}\n{}for d in {}; do [ -d \"$d\" ] && find \"$d\" \\( -type f -o -type l \\) -print0 2>/dev/null; done; :\n",
        quote(nonce),
        guard(root, guarded),
        join_quoted(folders)
    )
}

/// One exchange of an apply: a slice of the files, with the scripts that belong to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApplyStep<'a> {
    pub pre: &'a [&'a PlannedScript],
    pub files: &'a [Placement],
    pub post: &'a [&'a PlannedScript],
    /// Health checks, after the post scripts (the last step's).
    pub health: &'a [&'a PlannedScript],
    /// Whether this step keeps what it replaces and puts it back when a post script or a
    /// health check fails (a push in one step; a push too big for one command keeps today's
    /// "files stay, post scripts due" in its earlier steps).
    pub transaction: bool,
    /// Whether this step records the due post scripts (the first step that places files).
    pub record_pending: bool,
    /// The journal to store (the first step's), before anything is renamed.
    pub journal: Option<&'a [u8]>,
    /// Files to remove (the last step's), and folders to remove when empty.
    pub remove: &'a [NodePath],
    pub remove_dirs: &'a [NodePath],
    /// Links to place (the last step's) and managed folders to create or correct (the
    /// first step's).
    pub links: &'a [(NodePath, String)],
    pub dirs: &'a [PlannedDir],
}

/// What a file costs in a snippet: its paths a few times (its contents travel on standard
/// input, never in the command).
fn snippet_cost(file: &Placement) -> usize {
    6 * (file.destination.as_str().len() + 40)
}

/// Splits an apply into steps whose snippets fit in one command: usually one step; pre
/// scripts go with the first, post scripts with the last.
pub(crate) fn apply_steps<'a>(request: &'a Apply<'a>) -> Vec<ApplyStep<'a>> {
    let scripts: usize = request
        .pre
        .iter()
        .chain(request.post)
        .map(|s| 2 * s.content.len() + 200)
        .sum::<usize>()
        + if request.journal.len() <= INLINE_JOURNAL {
            2 * request.journal.len() + 100
        } else {
            0
        };
    let mut chunks: Vec<&'a [Placement]> = Vec::new();
    let mut start = 0;
    let mut size = scripts;
    for (index, file) in request.files.iter().enumerate() {
        let cost = snippet_cost(file);
        if size + cost > MAX_SCRIPT - 8192 && index > start {
            chunks.push(&request.files[start..index]);
            start = index;
            size = 0;
        }
        size += cost;
    }
    chunks.push(&request.files[start..]);
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, files)| ApplyStep {
            pre: if index == 0 { request.pre } else { &[] },
            files,
            post: if index == last { request.post } else { &[] },
            health: if index == last { request.health } else { &[] },
            transaction: request.revert_on_failure && last == 0,
            record_pending: index == 0 && !request.post.is_empty(),
            journal: (index == 0).then_some(request.journal),
            remove: if index == last { request.remove } else { &[] },
            remove_dirs: if index == last { request.remove_dirs } else { &[] },
            links: if index == last { request.links } else { &[] },
            dirs: if index == 0 { request.dirs } else { &[] },
        })
        .collect()
}

/// The snippet of one apply step and the bytes to send on its standard input.
///
/// It checks that this push holds the node's lock; creates missing folders (with their
/// `dir_mode`) and a private staging folder inside each target folder, so that every rename
/// stays on one filesystem; writes each file there (small ones from the snippet itself, large
/// ones from its input, checked to have arrived whole); fsyncs them and sets owner, then mode;
/// runs the pre scripts (stopping at the first failure, with nothing placed); records the due
/// post scripts; renames the staged files over their targets, one `mv` per folder (a rename
/// replaces a symlink, it never follows it); reports the placed files' attributes; runs the
/// post scripts and, when all succeed, clears the due record. Staging folders and scripts are
/// removed however it ends.
///
/// `held`: the snippet travels on the input of the held command (`HELD_RUNNER`), not on a
/// command line of its own that `ps` shows; then a small journal is written by the snippet
/// itself rather than read from its input.
pub(crate) fn apply(
    request: &Apply<'_>,
    step: &ApplyStep<'_>,
    root: &str,
    nonce: &str,
    held: bool,
) -> (String, Vec<u8>) {
    let targets = Targets::of(step.files, root, nonce);
    let mut snippet = Snippet {
        inline_journal: held,
        ..Snippet::default()
    };
    let mut reached: Vec<NodePath> = step.files.iter().map(|file| file.destination.clone()).collect();
    reached.extend(step.remove.iter().chain(step.remove_dirs).cloned());
    reached.extend(step.links.iter().map(|(path, _)| path.clone()));
    reached.extend(step.dirs.iter().map(|dir| dir.path.clone()));
    let link_temps = link_temps(step.links, root, nonce);
    snippet.header(root, nonce, &guarded_folders(&reached, root));
    let confirm = request.confirm.filter(|_| step.transaction);
    let transaction = keeps_previous(request, step);
    let backups = Backups::of(&targets, step, root, nonce, transaction);
    // In the lock holder's own foreground, the staging folders go with the lock.
    let deferred = held && plain_placement(request, step);
    snippet.cleanup_and_runner(&targets, &link_temps, &backups, request.script_timeout, deferred);
    snippet.environment(request, root);
    let scripts: Vec<&PlannedScript> = step.pre.iter().chain(step.post).chain(step.health).copied().collect();
    // The run folder holds the scripts, what they read and a transaction's undo log: a plain
    // placement goes without (two folders and two files fewer to make on the node).
    let run_folder = !plain_placement(request, step);
    let mut parents_of: Vec<(&NodePath, Mode)> = step
        .files
        .iter()
        .map(|file| (&file.destination, file.dir_mode))
        .collect();
    parents_of.extend(step.links.iter().map(|(path, _)| (path, Mode::EXECUTABLE)));
    parents_of.extend(step.dirs.iter().map(|dir| (&dir.path, Mode::EXECUTABLE)));
    snippet.folders(&parents_of, root);
    snippet.staging_folders(&targets, run_folder);
    if run_folder {
        snippet.path_lists(request, root);
    }
    snippet.contents(&scripts, step.files, step.journal, &targets, nonce);
    snippet.attributes(step.files, &targets);
    snippet.run_lines(step.pre, 0, Stage::Pre, &format!("exit {EXIT_PRE_FAILED}"));
    snippet.validations(step.files, &targets, request.script_timeout);
    if step.record_pending {
        snippet.record_pending(request.changed);
    }
    if transaction {
        snippet.keep_previous(step, &targets, &link_temps, &backups, root);
    }
    if step.journal.is_some() {
        snippet.store_journal();
    }
    snippet.managed_dirs(step.dirs, root);
    if !step.files.is_empty() {
        snippet.renames(&targets);
    }
    snippet.links(step.links, &link_temps, root);
    if transaction {
        snippet.kept_removals(step.remove, step.remove_dirs, &backups, root);
    } else {
        snippet.removals(step.remove, step.remove_dirs, root);
    }
    let placing = !step.files.is_empty() || !step.links.is_empty() || !step.dirs.is_empty();
    if placing || !step.remove.is_empty() || !step.remove_dirs.is_empty() {
        snippet.script.push_str("printf 'PLACED\\n'\n");
    }
    if !step.files.is_empty() {
        snippet.placed_attributes(&targets);
    }
    if transaction {
        let first = step.pre.len();
        snippet.revert_function(step, &targets, &link_temps, &backups, root, first);
        let revert = format!("{{ revert; exit {EXIT_ROLLED_BACK}; }}");
        snippet.run_lines(step.post, first, Stage::Post, &revert);
        snippet.run_lines(step.health, first + step.post.len(), Stage::Health, &revert);
        if let Some(seconds) = confirm {
            snippet.await_confirmation(seconds);
        }
    } else {
        let failed = format!("exit {EXIT_POST_FAILED}");
        snippet.run_lines(step.post, step.pre.len(), Stage::Post, &failed);
        snippet.run_lines(step.health, step.pre.len() + step.post.len(), Stage::Health, &failed);
    }
    if !step.post.is_empty() {
        snippet.script.push_str("rm -f \"$S/pending-post\"\n");
    }
    snippet.script.push_str("printf 'DONE-%s\\n' \"$N\"\n");
    let script = if held {
        whole_or_nothing(&snippet.script)
    } else {
        snippet.script
    };
    (script, snippet.input)
}

/// How a snippet runs `command` (shell words) in a subshell of its own, and what it says to the
/// lock once that ends. With a timeout, coreutils' `timeout` runs it in a process group of its
/// own and kills that whole group when time is up (KILL 5 s after TERM); the group's id goes to
/// the lock first (`script <group>`, then `scripted`), so that stopping the apply stops it too.
fn under_timeout(timeout: Option<u64>, command: &str) -> (String, &'static str) {
    match timeout {
        Some(seconds) => (
            format!(
                "exec sh -c 'printf \"script %s\\n\" \"$$\" >> \"$0\"; exec \"$@\"' \"$S/lock\" timeout -k 5 {seconds} {command}"
            ),
            "  printf 'scripted\\n' >> \"$S/lock\"\n",
        ),
        None => (format!("exec {command}"), ""),
    }
}

/// A snippet that runs only if it arrived whole: one function, called on its last line with a
/// last word it checks. A held snippet travels on the held command's input, and if pacha goes
/// away while sending it the runner gets only its beginning: the shell then finds the
/// function's body unfinished (a syntax error), or the call missing or cut short, and runs none
/// of it. (The snippet's `$1` is kept: the held runner always gives one.)
pub(crate) fn whole_or_nothing(snippet: &str) -> String {
    format!(
        "pacha_apply() {{\n[ \"${{2-}}\" = whole ] || exit 1\nset -- \"$1\"\n{snippet}}}\npacha_apply \"${{1-}}\" whole\n"
    )
}

/// Whether a step keeps what it replaces, to put it back when a post script or a health check
/// fails or the change is not confirmed.
fn keeps_previous(request: &Apply<'_>, step: &ApplyStep<'_>) -> bool {
    step.transaction && (request.confirm.is_some() || !(step.post.is_empty() && step.health.is_empty()))
}

/// Whether a step only places and removes: no script, no `validate` command, nothing kept to put
/// back. It needs no run folder, and a held runner runs it in its own foreground (it ends on
/// its own, waiting for nothing).
pub(crate) fn plain_placement(request: &Apply<'_>, step: &ApplyStep<'_>) -> bool {
    step.pre.is_empty()
        && step.post.is_empty()
        && step.health.is_empty()
        && !keeps_previous(request, step)
        && step.files.iter().all(|file| file.validate.is_none())
}

/// The temporary name of each link, beside it.
fn link_temps(links: &[(NodePath, String)], root: &str, nonce: &str) -> Vec<String> {
    links
        .iter()
        .enumerate()
        .map(|(index, (path, _))| {
            let folder = path.parent().unwrap_or_else(NodePath::root).under_root(root);
            format!("{}/.pacha-{nonce}-l{index}", folder.trim_end_matches('/'))
        })
        .collect()
}

/// Where a transaction keeps what it replaces or removes: a private folder beside each
/// target folder (same filesystem, so putting back is a rename).
struct Backups {
    /// Every folder that gets one (placed or removed files in it), in first-seen order.
    folders: Vec<String>,
    nonce: String,
    enabled: bool,
}

impl Backups {
    fn of(targets: &Targets, step: &ApplyStep<'_>, root: &str, nonce: &str, enabled: bool) -> Backups {
        let mut folders = targets.folders.clone();
        for path in step.remove {
            let folder = path.parent().unwrap_or_else(NodePath::root).under_root(root);
            if !folders.contains(&folder) {
                folders.push(folder);
            }
        }
        Backups {
            folders,
            nonce: nonce.to_owned(),
            enabled,
        }
    }

    fn dir(&self, folder: &str) -> String {
        format!("{}/.pacha-{}-old", folder.trim_end_matches('/'), self.nonce)
    }

    /// Where the previous version of `target` (a path under the root) is kept.
    fn of_path(&self, target: &str) -> String {
        let (folder, name) = target.rsplit_once('/').unwrap_or(("", target));
        let folder = if folder.is_empty() { "/" } else { folder };
        format!("{}/{name}", self.dir(folder))
    }
}

/// Where each file of a step goes: its target path, its folder, and the staging path in that
/// folder's private staging folder; and the target folders in first-seen order.
struct Targets {
    /// Per file: the target path under the root, its folder, its staged path.
    files: Vec<(String, String, String)>,
    /// Every target folder once, in the order files name them.
    folders: Vec<String>,
    nonce: String,
}

impl Targets {
    fn of(files: &[Placement], root: &str, nonce: &str) -> Targets {
        let mut targets = Targets {
            files: Vec::with_capacity(files.len()),
            folders: Vec::new(),
            nonce: nonce.to_owned(),
        };
        for file in files {
            let target = file.destination.under_root(root);
            let (folder, name) = target
                .rsplit_once('/')
                .map_or((String::new(), target.clone()), |(f, n)| (f.to_owned(), n.to_owned()));
            let folder = if folder.is_empty() { "/".to_owned() } else { folder };
            if !targets.folders.contains(&folder) {
                targets.folders.push(folder.clone());
            }
            let staged = format!("{}/{name}", targets.staging(&folder));
            targets.files.push((target, folder, staged));
        }
        targets
    }

    /// The private staging folder inside `folder`, so every rename stays on one filesystem.
    fn staging(&self, folder: &str) -> String {
        format!("{}/.pacha-{}", folder.trim_end_matches('/'), self.nonce)
    }

    fn staged(&self) -> Vec<&str> {
        self.files.iter().map(|(_, _, staged)| staged.as_str()).collect()
    }
}

/// The largest file a tar header's size field holds (11 octal digits); a larger one travels
/// with `head -c`.
const TAR_MAX_SIZE: usize = 1 << 33;

/// The tar header(s) of a regular file `name` (no leading `/`) of `size` bytes and permission
/// bits `mode` (at most 0777), in the old GNU format that GNU tar and busybox read: a name of
/// 100 bytes or more goes in a `././@LongLink` entry before the header.
fn tar_headers(out: &mut Vec<u8>, name: &[u8], size: usize, mode: u32) {
    let header = |name: &[u8], size: usize, kind: u8| -> [u8; 512] {
        let mut block = [0u8; 512];
        let length = name.len().min(99);
        block[..length].copy_from_slice(&name[..length]);
        block[100..108].copy_from_slice(format!("{:07o}\0", mode & 0o777).as_bytes());
        block[108..116].copy_from_slice(b"0000000\0");
        block[116..124].copy_from_slice(b"0000000\0");
        block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        block[136..148].copy_from_slice(b"00000000000\0");
        block[148..156].fill(b' ');
        block[156] = kind;
        block[257..265].copy_from_slice(b"ustar  \0");
        let sum: u32 = block.iter().map(|byte| u32::from(*byte)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        block
    };
    if name.len() >= 100 {
        out.extend_from_slice(&header(b"././@LongLink", name.len() + 1, b'L'));
        out.extend_from_slice(name);
        let written = name.len() + 1;
        out.resize(out.len() + 1 + (written.next_multiple_of(512) - written), 0);
    }
    out.extend_from_slice(&header(name, size, b'0'));
}

/// A snippet being written, and what it reads on its standard input.
#[derive(Default)]
struct Snippet {
    script: String,
    input: Vec<u8>,
    /// Whether the staged files' permission bits came with them (from the tar stream, unless
    /// the node had no tar: then `$F` is set and `chmod` sets them).
    modes_streamed: bool,
    /// Whether a small journal may be written by the snippet itself: only when the snippet is
    /// not on a command line (the journal holds the files' hashes).
    inline_journal: bool,
    /// That journal, as a shell word.
    journal_text: Option<String>,
}

/// A journal up to this size is written by a held snippet itself (`printf`, a shell builtin:
/// no process, nothing on a command line), a larger one comes on standard input.
pub(crate) const INLINE_JOURNAL: usize = 16 * 1024;

/// Permission bits alone: what tar sets as the stream says (`chown` later leaves them be).
fn plain(mode: Mode) -> bool {
    mode.bits() & !0o777 == 0
}

impl Snippet {
    /// Strict mode, private files, the state folder, this push's nonce, and the check that it
    /// holds the node's lock.
    fn header(&mut self, root: &str, nonce: &str, guarded: &[String]) {
        let cd_root = if root.is_empty() { "/" } else { root };
        let _ = writeln!(
            self.script,
            "set -u\numask 077\nN={}\nprintf 'BEGIN-%s\\n' \"$N\"",
            quote(nonce)
        );
        // Before the state folder is made: it must not be reached through a symlink either.
        self.script.push_str(&guard(root, guarded));
        self.script.push_str(&state_setup(root));
        let _ = writeln!(self.script, "R={}\nT=\"$S/run.$N\"", quote(cd_root));
        self.script.push_str(
            r#"fail() { printf '%s\n' "$1" >&2; exit "${2:-1}"; }
held=; { read -r held; read -r held; } < "$S/lock" 2>/dev/null
[ "$held" = "$N" ] || fail "this push does not hold the node's lock" 76
G=${1-$$}
printf 'apply %s\n' "$G" >> "$S/lock"
"#,
        );
    }

    /// Removal of the staging folders however the snippet ends (`deferred`: in the lock
    /// holder's own foreground, by the lock, see [`LOCK`]), and `run`, which runs one uploaded
    /// script and reports its status and output.
    fn cleanup_and_runner(
        &mut self,
        targets: &Targets,
        link_temps: &[String],
        backups: &Backups,
        timeout: Option<u64>,
        deferred: bool,
    ) {
        let mut staged: Vec<String> = targets.folders.iter().map(|folder| targets.staging(folder)).collect();
        staged.extend(link_temps.iter().cloned());
        if backups.enabled {
            staged.extend(backups.folders.iter().map(|folder| backups.dir(folder)));
            staged.extend(link_temps.iter().map(|temp| format!("{temp}.old")));
        }
        let remove = if deferred {
            // Named to the lock before any is made (`unstage`). A large journal's temporary
            // file, left only by a failure, goes here.
            if !staged.is_empty() {
                let words: Vec<String> = staged
                    .iter()
                    .map(|path| quote(path).replace('\n', "'\"$nl\"'"))
                    .collect();
                let _ = writeln!(
                    self.script,
                    "printf '%s\\n' {} >> \"$S/lock\"",
                    quote(&format!("staged {}", words.join(" ")))
                );
            }
            "[ ! -e \"$S/journal.$N\" ] || rm -f -- \"$S/journal.$N\"".to_owned()
        } else {
            let mut cleanup = vec!["\"$T\"".to_owned(), "\"$S/journal.$N\"".to_owned()];
            cleanup.extend(staged.iter().map(|path| quote(path)));
            format!("rm -rf -- {}", cleanup.join(" "))
        };
        // The lock is told this apply ended, unless the lock is another's by then.
        let _ = writeln!(
            self.script,
            "cleanup() {{ trap '' HUP INT TERM PIPE; {remove}; l=; {{ read -r l; read -r l; }} < \"$S/lock\" 2>/dev/null; [ \"$l\" != \"$N\" ] || printf 'applied %s\\n' \"$G\" >> \"$S/lock\"; }}"
        );
        self.script
            .push_str("trap cleanup EXIT\ntrap 'exit 1' HUP INT TERM PIPE\n");
        let (exec, ended) = under_timeout(timeout, "\"$T/$1\"");
        self.script.push_str(&format!(
            r#"run() {{
  ( cd "$R" 2>/dev/null || cd /; PACHA_STAGE=$2 PACHA_PHASE=$3 PACHA_SCRIPT=$4 {exec} ) < /dev/null > "$T/out" 2>&1
  st=$?
{ended}  printf 'S %s %s %s\n' "$1" "$st" "$(wc -c < "$T/out")"
  cat "$T/out"
  return "$st"
}}
"#
        ));
    }

    /// What scripts see: `PACHA_NODE`, `PACHA_STATE`, `PACHA_ROOT`, `PACHA_CHANGED` and
    /// `PACHA_REMOVED` (paths under the root, one per line).
    fn environment(&mut self, request: &Apply<'_>, root: &str) {
        let cd_root = if root.is_empty() { "/" } else { root };
        let under = |paths: &[NodePath]| {
            paths
                .iter()
                .map(|path| path.under_root(root))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut removed = request.remove.to_vec();
        removed.extend(request.remove_dirs.iter().cloned());
        let _ = writeln!(
            self.script,
            "PACHA_NODE={} PACHA_STATE={} PACHA_ROOT={} PACHA_CHANGED={} PACHA_REMOVED={}\nexport PACHA_NODE PACHA_STATE PACHA_ROOT PACHA_CHANGED PACHA_REMOVED",
            quote(request.node),
            quote(request.state),
            quote(cd_root),
            quote(&under(request.changed)),
            quote(&under(&removed))
        );
    }

    /// Missing folders above `paths`, parents first, created with their mode in as few
    /// `mkdir` as possible.
    fn folders(&mut self, paths: &[(&NodePath, Mode)], root: &str) {
        if !paths.is_empty() {
            self.script
                .push_str("[ -d \"$R\" ] || (umask 022 && mkdir -p \"$R\") || fail \"cannot create $R\"\n");
        }
        let mut folders: BTreeMap<String, Mode> = BTreeMap::new();
        for (path, dir_mode) in paths {
            let mut parent = path.parent();
            while let Some(folder) = parent {
                if folder.as_str() == "/" {
                    break;
                }
                folders.entry(folder.under_root(root)).or_insert(*dir_mode);
                parent = folder.parent();
            }
        }
        let mut runs: Vec<(Mode, Vec<&str>)> = Vec::new();
        for (folder, mode) in &folders {
            match runs.last_mut() {
                Some((run_mode, list)) if run_mode == mode => list.push(folder),
                _ => runs.push((*mode, vec![folder])),
            }
        }
        for (mode, list) in runs {
            let _ = writeln!(
                self.script,
                "set --\nfor d in {}; do [ -d \"$d\" ] || set -- \"$@\" \"$d\"; done\n[ \"$#\" -eq 0 ] || mkdir -m {mode} -- \"$@\" || fail 'cannot create a folder'",
                join_quoted(&list)
            );
        }
    }

    /// The run folder of the scripts (when there is one) and the staging folder of each target
    /// folder.
    fn staging_folders(&mut self, targets: &Targets, run_folder: bool) {
        let mut private = if run_folder {
            vec!["\"$T\"".to_owned()]
        } else {
            Vec::new()
        };
        private.extend(targets.folders.iter().map(|folder| quote(&targets.staging(folder))));
        if private.is_empty() {
            return;
        }
        let _ = writeln!(
            self.script,
            "mkdir -- {} || fail 'cannot create staging folders'",
            private.join(" ")
        );
    }

    /// `PACHA_CHANGED_FILE` and `PACHA_REMOVED_FILE`: the changed and removed paths (under the
    /// root) NUL-separated in files of the run folder, unambiguous whatever a name holds
    /// (set whenever a script or a `validate` command runs; empty files when nothing changed
    /// or went).
    fn path_lists(&mut self, request: &Apply<'_>, root: &str) {
        let mut removed = request.remove.to_vec();
        removed.extend(request.remove_dirs.iter().cloned());
        for (name, paths) in [("changed", request.changed), ("removed", removed.as_slice())] {
            let listed: Vec<String> = paths.iter().map(|path| path.under_root(root)).collect();
            if listed.is_empty() {
                let _ = writeln!(self.script, ": > \"$T/{name}\"");
            } else {
                let _ = writeln!(
                    self.script,
                    "printf '%s\\000' {} > \"$T/{name}\" || fail 'cannot list the {name} files'",
                    join_quoted(&listed)
                );
            }
        }
        self.script.push_str(
            "PACHA_CHANGED_FILE=\"$T/changed\" PACHA_REMOVED_FILE=\"$T/removed\"\nexport PACHA_CHANGED_FILE PACHA_REMOVED_FILE\n",
        );
    }

    /// One file's contents, read from standard input: a rendered byte (a secret) never
    /// appears in a command line on the node, where any local user could read it with `ps`.
    fn write(&mut self, content: &[u8], path: &str) {
        let _ = writeln!(
            self.script,
            "head -c {} > {} || fail 'cannot write a file'",
            content.len(),
            path
        );
        self.input.extend_from_slice(content);
    }

    /// The scripts, in run order, then the staged files; the input's end marker is checked
    /// before anything goes further. The files travel as one tar stream that one `tar -x`
    /// places (one process, not one per file); a node without tar reads the same stream with a
    /// `head -c` per file and per header.
    fn contents(
        &mut self,
        scripts: &[&PlannedScript],
        files: &[Placement],
        journal: Option<&[u8]>,
        targets: &Targets,
        nonce: &str,
    ) {
        let mut streamed = false;
        for (index, planned) in scripts.iter().enumerate() {
            self.write(&planned.content, &format!("\"$T/{index}\""));
            streamed = true;
        }
        if let Some(journal) = journal {
            match std::str::from_utf8(journal) {
                Ok(text) if self.inline_journal && journal.len() <= INLINE_JOURNAL && !text.contains('\0') => {
                    // Written in place when it is stored ([`Snippet::store_journal`]).
                    self.journal_text = Some(quote(text));
                }
                _ => {
                    self.write(journal, "\"$S/journal.$N\"");
                    streamed = true;
                }
            }
        }
        let in_tar = !files.is_empty() && files.iter().all(|file| file.content.len() < TAR_MAX_SIZE);
        if in_tar {
            // Whole when tar ends well and made the last member: tar fails on a member cut
            // short, and goes through the members in order (no sentinel member: one file
            // fewer to make on the node). Without tar, the stream's last block is counted: a
            // `head -c` given less than it asked for still ends well.
            let last = targets.staged().last().map(|staged| quote(staged)).unwrap_or_default();
            let members = files
                .iter()
                .zip(targets.staged())
                .map(|(file, staged)| (staged, &file.content[..], file.mode));
            let mut fallback = String::new();
            let mut skip = 0;
            let stream_start = self.input.len();
            for (path, content, mode) in members {
                let before = self.input.len();
                let bits = if plain(mode) { mode.bits() } else { 0o600 };
                tar_headers(
                    &mut self.input,
                    path.trim_start_matches('/').as_bytes(),
                    content.len(),
                    bits,
                );
                skip += self.input.len() - before;
                let _ = write!(
                    fallback,
                    "head -c {skip} > /dev/null && head -c {} > {} && ",
                    content.len(),
                    quote(path)
                );
                self.input.extend_from_slice(content);
                let padding = content.len().next_multiple_of(512) - content.len();
                self.input.resize(self.input.len() + padding, 0);
                skip = padding;
            }
            self.input.resize(self.input.len() + 1024, 0);
            let _ = write!(fallback, "head -c {} > /dev/null && ", skip + 512);
            // tar gets exactly the stream: after it, the input may stay open (an apply that
            // waits for its confirmation), and a tar reading ahead would wait for it. When the
            // input is a file holding the stream alone (a held session's), tar reads it itself.
            let whole = if stream_start == 0 {
                "if [ -f /dev/stdin ]; then tar -x -o -m -C / -f -; else "
            } else {
                "{ "
            };
            let close = if stream_start == 0 { "fi" } else { "}" };
            // Under a umask that masks no bit any of these modes has, every tar makes each file
            // with the stream's mode, whether it keeps permissions as they are (root, `-p`) or
            // masks them with the umask; a folder tar would make (none should be missing) gets
            // no bit that no file has.
            let union = files
                .iter()
                .filter(|file| plain(file.mode))
                .fold(0o600, |union, file| union | file.mode.bits());
            let mask = 0o777 & !union;
            self.modes_streamed = true;
            let _ = writeln!(
                self.script,
                "F=\nif command -v tar > /dev/null 2>&1; then umask {mask:03o}; {whole}head -c {} | tar -x -o -m -C / -f -; {close}; t=$?; umask 077; [ \"$t\" = 0 ] || fail 'cannot write the files'; else F=1; {{ {fallback}:; }} || fail 'cannot write a file'; [ \"$(head -c 512 | wc -c)\" -eq 512 ] || fail 'the input ended early' 81; fi\n[ -f {last} ] || fail 'the input ended early' 81",
                self.input.len() - stream_start,
            );
        } else {
            for (file, staged) in files.iter().zip(targets.staged()) {
                self.write(&file.content, &quote(staged));
                streamed = true;
            }
            if streamed {
                let _ = writeln!(
                    self.script,
                    "IFS= read -r end || fail 'the input ended early' 81\n[ \"$end\" = \"END-$N\" ] || fail 'the input arrived damaged' 81"
                );
                self.input.extend_from_slice(format!("END-{nonce}\n").as_bytes());
            }
        }
        if !scripts.is_empty() {
            self.script.push_str("chmod 700 \"$T\"/[0-9]*\n");
        }
    }

    /// The journal in its place, before anything is renamed: a small one written there by the
    /// snippet itself (one builtin `printf`, no process; the journal's last line tells a whole
    /// one from one a crash cut short), a larger one renamed from where the input put it.
    fn store_journal(&mut self) {
        match self.journal_text.take() {
            Some(text) => {
                let _ = writeln!(
                    self.script,
                    "printf '%s' {text} > \"$S/journal\" || fail 'cannot store the journal'"
                );
            }
            None => self
                .script
                .push_str("mv -f \"$S/journal.$N\" \"$S/journal\" || fail 'cannot store the journal'\n"),
        }
    }

    /// fsync of the staged files, then owner, then mode (chown clears setuid and setgid bits,
    /// chmod then sets them), grouped so that each command runs once per owner or mode.
    fn attributes(&mut self, files: &[Placement], targets: &Targets) {
        let staged = targets.staged();
        if staged.is_empty() {
            return;
        }
        let _ = writeln!(self.script, "sync -- {} 2>/dev/null || sync", join_quoted(&staged));
        let mut by_owner: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        let mut by_mode: BTreeMap<Mode, Vec<&str>> = BTreeMap::new();
        for (file, staged) in files.iter().zip(&staged) {
            let owner = match (&file.owner, &file.group) {
                (Some(owner), Some(group)) => Some(format!("{owner}:{group}")),
                (Some(owner), None) => Some(owner.clone()),
                (None, Some(group)) => Some(format!(":{group}")),
                (None, None) => None,
            };
            if let Some(owner) = owner {
                by_owner.entry(owner).or_default().push(staged);
            }
            by_mode.entry(file.mode).or_default().push(staged);
        }
        for (owner, group) in &by_owner {
            let _ = writeln!(
                self.script,
                "chown -- {} {} || fail {}",
                quote(owner),
                join_quoted(group),
                quote(&format!("cannot set owner {owner}"))
            );
        }
        for (mode, group) in &by_mode {
            // Set by tar already, unless the node had none.
            let unless_streamed = if self.modes_streamed && plain(*mode) {
                "[ -z \"$F\" ] || "
            } else {
                ""
            };
            let _ = writeln!(
                self.script,
                "{unless_streamed}chmod {mode} -- {} || fail 'cannot set mode {mode}'",
                join_quoted(group)
            );
        }
    }

    /// Runs `scripts` (uploaded pre, then post, then health: `run` takes their index in that
    /// order, starting at `first`); a failure runs `on_failure` (`exit 70`, `{ revert; … }`).
    fn run_lines(&mut self, scripts: &[&PlannedScript], first: usize, stage: Stage, on_failure: &str) {
        for (offset, planned) in scripts.iter().enumerate() {
            let _ = writeln!(
                self.script,
                "run {} {stage} {} {} || {on_failure}",
                first + offset,
                quote(&planned.phase),
                quote(&planned.name)
            );
        }
    }

    /// Before anything is replaced: the journal copied, every file and link that will be
    /// replaced hard-linked (or copied) into the backup folder beside it, and for each managed
    /// folder how to put it back (its owner and mode, or that it was not there) in the undo log.
    fn keep_previous(
        &mut self,
        step: &ApplyStep<'_>,
        targets: &Targets,
        link_temps: &[String],
        backups: &Backups,
        root: &str,
    ) {
        self.script
            .push_str(": > \"$T/undo\" || fail 'cannot start the undo log'\n");
        if step.journal.is_some() {
            self.script.push_str(
                "if [ -f \"$S/journal\" ]; then cp -p -- \"$S/journal\" \"$T/journal.old\" || fail 'cannot keep the journal'; fi\n",
            );
        }
        let dirs: Vec<String> = backups.folders.iter().map(|folder| backups.dir(folder)).collect();
        if !dirs.is_empty() {
            let _ = writeln!(
                self.script,
                "mkdir -p -- {} || fail 'cannot create backup folders'",
                join_quoted(&dirs)
            );
        }
        for folder in &targets.folders {
            let names: Vec<&str> = targets
                .files
                .iter()
                .filter(|(_, f, _)| f == folder)
                .filter_map(|(target, _, _)| target.rsplit_once('/').map(|(_, name)| name))
                .collect();
            let _ = writeln!(
                self.script,
                "set --; for n in {names}; do if [ -e {f}/\"$n\" ] || [ -L {f}/\"$n\" ]; then set -- \"$@\" {f}/\"$n\"; fi; done\n[ \"$#\" -eq 0 ] || ln -P -t {b} -- \"$@\" 2>/dev/null || cp -a -t {b} -- \"$@\" || fail {failed}",
                names = join_quoted(&names),
                f = quote(folder.trim_end_matches('/')),
                b = quote(&backups.dir(folder)),
                failed = quote(&format!("cannot keep the previous files of {folder}")),
            );
        }
        for ((path, _), temp) in step.links.iter().zip(link_temps) {
            let path = quote(&path.under_root(root));
            let _ = writeln!(
                self.script,
                "if [ -e {path} ] || [ -L {path} ]; then ln -P -- {path} {old} 2>/dev/null || cp -a -- {path} {old} || fail 'cannot keep a link'; fi",
                old = quote(&format!("{temp}.old")),
            );
        }
        for dir in step.dirs {
            let plain = dir.path.under_root(root);
            let path = quote(&plain);
            let twice = quote(&path);
            let _ = writeln!(
                self.script,
                "if [ -d {path} ]; then printf 'chown -- %s %s; chmod %s -- %s\\n' \"$(stat -c %u:%g -- {path})\" {twice} \"$(stat -c %a -- {path})\" {twice} >> \"$T/undo\"; else printf 'rmdir -- %s\\n' {twice} >> \"$T/undo\"; fi"
            );
        }
    }

    /// Removals that can be undone: files and links moved into the backup folder beside them,
    /// folders removed when empty with how to make them again in the undo log.
    fn kept_removals(&mut self, files: &[NodePath], dirs: &[NodePath], backups: &Backups, root: &str) {
        for path in files {
            let target = path.under_root(root);
            let quoted = quote(&target);
            let _ = writeln!(
                self.script,
                "if [ -e {quoted} ] || [ -L {quoted} ]; then mv -f -- {quoted} {kept} || fail 'cannot remove files'; fi",
                kept = quote(&backups.of_path(&target)),
            );
        }
        for dir in dirs {
            let path = quote(&dir.under_root(root));
            let twice = quote(&path);
            let _ = writeln!(
                self.script,
                "if [ -d {path} ]; then o=$(stat -c %u:%g -- {path}); m=$(stat -c %a -- {path}); rmdir -- {path} 2>/dev/null && printf 'mkdir -- %s && chown -- %s %s && chmod %s -- %s\\n' {twice} \"$o\" {twice} \"$m\" {twice} >> \"$T/undo\"; fi; :"
            );
        }
    }

    /// `revert`: puts back everything the step replaced or removed (files and links from the
    /// backup folders, new ones removed, folders from the undo log in reverse, the journal),
    /// reports `REVERTED <0|1>` (1: something could not be put back), then runs the post
    /// scripts again on the restored files.
    fn revert_function(
        &mut self,
        step: &ApplyStep<'_>,
        targets: &Targets,
        link_temps: &[String],
        backups: &Backups,
        root: &str,
        first: usize,
    ) {
        // Nothing interrupts a roll back half way (pacha gone: its output has nowhere to go).
        self.script
            .push_str("revert() {\n  trap '' HUP INT TERM PIPE\n  bad=0\n");
        if step.journal.is_some() {
            self.script.push_str(
                "  if [ -f \"$T/journal.old\" ]; then mv -f -- \"$T/journal.old\" \"$S/journal\" || bad=1; else rm -f -- \"$S/journal\"; fi\n",
            );
        }
        for (target, _, _) in &targets.files {
            let _ = writeln!(
                self.script,
                "  if [ -e {kept} ] || [ -L {kept} ]; then mv -fT -- {kept} {t} || bad=1; else rm -f -- {t} || bad=1; fi",
                kept = quote(&backups.of_path(target)),
                t = quote(target),
            );
        }
        for ((path, _), temp) in step.links.iter().zip(link_temps) {
            let _ = writeln!(
                self.script,
                "  if [ -e {old} ] || [ -L {old} ]; then mv -fT -- {old} {p} || bad=1; else rm -f -- {p} || bad=1; fi",
                old = quote(&format!("{temp}.old")),
                p = quote(&path.under_root(root)),
            );
        }
        for path in step.remove {
            let target = path.under_root(root);
            let _ = writeln!(
                self.script,
                "  if [ -e {kept} ] || [ -L {kept} ]; then mv -fT -- {kept} {t} || bad=1; fi",
                kept = quote(&backups.of_path(&target)),
                t = quote(&target),
            );
        }
        self.script.push_str(
            "  if [ -s \"$T/undo\" ]; then tac -- \"$T/undo\" > \"$T/undo.r\" || bad=1; while IFS= read -r line; do eval \"$line\" || bad=1; done < \"$T/undo.r\"; fi\n  printf 'REVERTED %s\\n' \"$bad\"\n  again=0\n",
        );
        self.run_lines(step.post, first, Stage::Post, "again=1");
        self.script
            .push_str("  [ \"$again\" -ne 0 ] || rm -f \"$S/pending-post\"\n}\n");
    }

    /// Confirm or revert: says `AWAIT-<nonce>` and waits at most `seconds` for pacha's
    /// `CONFIRM-<nonce>` on its input; anything else (`REVERT-…`, the input closed because
    /// pacha or the connection went away, the time running out, a signal) puts everything back.
    fn await_confirmation(&mut self, seconds: u64) {
        let _ = write!(
            self.script,
            "trap 'revert; exit {EXIT_ROLLED_BACK}' HUP INT TERM PIPE\nprintf 'AWAIT-%s\\n' \"$N\"\nv=$(timeout {seconds} head -n 1)\nif [ \"$v\" != \"CONFIRM-$N\" ]; then revert; exit {EXIT_ROLLED_BACK}; fi\ntrap 'exit 1' HUP INT TERM PIPE\n"
        );
    }

    /// Each staged file with a `validate` command checked by it, before anything is renamed:
    /// `check`, which reports a refusal (`V <index> <status> <bytes>` and the output) and
    /// stops the apply with nothing placed.
    fn validations(&mut self, files: &[Placement], targets: &Targets, timeout: Option<u64>) {
        if files.iter().all(|file| file.validate.is_none()) {
            return;
        }
        let (exec, ended) = under_timeout(timeout, "sh -c \"$2\"");
        let _ = write!(
            self.script,
            r#"check() {{
  ( cd "$R" 2>/dev/null || cd /; {exec} ) < /dev/null > "$T/vout" 2>&1
  st=$?
{ended}  [ "$st" -eq 0 ] && return 0
  printf 'V %s %s %s
' "$1" "$st" "$(wc -c < "$T/vout")"
  cat "$T/vout"
  return "$st"
}}
"#
        );
        for (index, (file, (_, _, staged))) in files.iter().zip(&targets.files).enumerate() {
            if let Some(command) = &file.validate {
                let command = command.replace("%s", &quote(staged));
                let _ = writeln!(self.script, "check {index} {} || exit {EXIT_INVALID}", quote(&command));
            }
        }
    }

    /// Records that the post scripts are due, for `changed`, before anything is renamed.
    fn record_pending(&mut self, changed: &[NodePath]) {
        let listed: Vec<&str> = changed.iter().map(NodePath::as_str).collect();
        let _ = writeln!(
            self.script,
            "printf '%s\\000' {} > \"$S/pending-post.$N\" && mv -f \"$S/pending-post.$N\" \"$S/pending-post\" || fail 'cannot record the due post scripts'",
            join_quoted(&listed)
        );
    }

    /// The staged files renamed over their targets, one `mv` per folder (a rename replaces a
    /// symlink, it never follows it).
    fn renames(&mut self, targets: &Targets) {
        for folder in &targets.folders {
            let names: Vec<&str> = targets
                .files
                .iter()
                .filter(|(_, f, _)| f == folder)
                .map(|(_, _, staged)| staged.as_str())
                .collect();
            let _ = writeln!(
                self.script,
                "mv -f -t {} -- {} || fail {}",
                quote(folder),
                join_quoted(&names),
                quote(&format!("cannot place files in {folder}"))
            );
        }
    }

    /// Managed folders created when missing, then given their owner and mode.
    fn managed_dirs(&mut self, dirs: &[PlannedDir], root: &str) {
        for dir in dirs {
            let path = quote(&dir.path.under_root(root));
            let _ = writeln!(
                self.script,
                "[ -d {path} ] || mkdir -m {mode} -- {path} || fail {failed}",
                mode = dir.mode,
                failed = quote(&format!("cannot create {}", dir.path))
            );
            let owner = match (&dir.owner, &dir.group) {
                (Some(owner), Some(group)) => Some(format!("{owner}:{group}")),
                (Some(owner), None) => Some(owner.clone()),
                (None, Some(group)) => Some(format!(":{group}")),
                (None, None) => None,
            };
            if let Some(owner) = owner {
                let _ = writeln!(
                    self.script,
                    "chown -- {} {path} || fail {}",
                    quote(&owner),
                    quote(&format!("cannot set owner {owner}"))
                );
            }
            let _ = writeln!(
                self.script,
                "chmod {} -- {path} || fail 'cannot set mode {}'",
                dir.mode, dir.mode
            );
        }
    }

    /// Each link made under a temporary name beside it, then renamed over its path: a link
    /// (or file) there is replaced at once, never followed (`mv -T`).
    fn links(&mut self, links: &[(NodePath, String)], temps: &[String], root: &str) {
        for ((path, target), temp) in links.iter().zip(temps) {
            let _ = writeln!(
                self.script,
                "ln -s -- {} {temp} && mv -fT -- {temp} {} || fail {}",
                quote(target),
                quote(&path.under_root(root)),
                quote(&format!("cannot place the link {path}")),
                temp = quote(temp),
            );
        }
    }

    /// Files and symlinks removed (never followed: `rm` removes a link itself), and folders
    /// removed when they are empty.
    fn removals(&mut self, files: &[NodePath], dirs: &[NodePath], root: &str) {
        if !files.is_empty() {
            let paths: Vec<String> = files.iter().map(|path| path.under_root(root)).collect();
            let _ = writeln!(
                self.script,
                "rm -f -- {} || fail 'cannot remove files'",
                join_quoted(&paths)
            );
        }
        if !dirs.is_empty() {
            let paths: Vec<String> = dirs.iter().map(|path| path.under_root(root)).collect();
            let _ = writeln!(
                self.script,
                "for d in {}; do rmdir -- \"$d\" 2>/dev/null; done; :",
                join_quoted(&paths)
            );
        }
    }

    /// The placed folders synced, then the placed files' attributes as the node sees them.
    fn placed_attributes(&mut self, targets: &Targets) {
        let _ = writeln!(self.script, "sync -- {} 2>/dev/null", join_quoted(&targets.folders));
        let placed: Vec<&str> = targets.files.iter().map(|(target, _, _)| target.as_str()).collect();
        let _ = writeln!(
            self.script,
            "printf 'A\\n'\nstat -c '%a:%u:%g:%s:%U:%G' -- {} || exit 94",
            join_quoted(&placed)
        );
    }
}

fn join_quoted<S: AsRef<str>>(values: &[S]) -> String {
    values
        .iter()
        .map(|value| quote(value.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {

    use super::*;

    /// A held runner (`script`) started for a test and fed one frame at a time, as pacha feeds
    /// it: the next after the answer.
    struct Runner {
        child: std::process::Child,
        stdin: Option<std::process::ChildStdin>,
        stdout: std::process::ChildStdout,
    }

    impl Runner {
        fn start(script: &str) -> Runner {
            let mut child = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(script)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let stdin = child.stdin.take();
            let stdout = child.stdout.take().unwrap();
            Runner { child, stdin, stdout }
        }

        /// Sends `frame` and reads its answer (`what` names it when the runner ends instead).
        fn answer(&mut self, frame: &[u8], nonce: &str, what: &str) -> crate::session::Finished {
            std::io::Write::write_all(self.stdin.as_mut().unwrap(), frame).unwrap();
            let mut reader = crate::session::HeldReader::new(nonce);
            let mut buffer = [0u8; 4096];
            loop {
                let read = std::io::Read::read(&mut self.stdout, &mut buffer).unwrap();
                assert!(read > 0, "the runner ended early ({what})");
                if let Some(answer) = reader.feed(&buffer[..read]) {
                    return answer;
                }
            }
        }

        /// Ends its input and waits for it to end.
        fn finish(mut self) -> std::process::ExitStatus {
            drop(self.stdin.take());
            self.child.wait().unwrap()
        }
    }

    /// `script` run by `sh`, to its end.
    fn sh(script: &str) -> std::process::Output {
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap()
    }

    /// The held runner's input file (file contents, secrets too) is emptied when a lock goes:
    /// a dead holder's at takeover, and this holder's own at its end.
    #[test]
    fn the_held_input_is_emptied_when_a_lock_goes() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().display().to_string();
        let held_in = dir.path().join("held.in");
        let script = format!(
            "set -u\nS={}\nN=00000000000000ff\nW=1\nHOLDER=test\n{LOCK}",
            quote(&state)
        );
        // Taken over: the dead holder's input goes at once, before this snippet holds the lock.
        std::fs::write(dir.path().join("lock"), "999999999\n00000000000000dd\nkilled\n").unwrap();
        std::fs::write(&held_in, "a dead holder's secret").unwrap();
        let watched = format!("{script}printf '%s' \"$(cat \"$S/held.in\")\" > \"$S/seen\"\n");
        let output = sh(&watched);
        assert!(output.status.success(), "{output:?}");
        assert_eq!(std::fs::read_to_string(dir.path().join("seen")).unwrap(), "");
        // Its own at its end.
        std::fs::write(&held_in, "this holder's secret").unwrap();
        let output = sh(&script);
        assert!(output.status.success(), "{output:?}");
        assert_eq!(std::fs::read_to_string(&held_in).unwrap(), "");
        assert!(!dir.path().join("lock").exists());
    }

    /// A lock taken over by a second pacha since this one found its holder dead: that live
    /// lock's apply is left running, and what this one moved aside (that lock) is put back as
    /// it was.
    #[test]
    fn a_live_lock_moved_aside_by_a_late_takeover_is_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("lock");
        // Alive: this test's own process.
        let mut apply = std::process::Command::new("sleep").arg("3631").spawn().unwrap();
        let live = format!(
            "{}\n00000000000000aa\nthe other pacha\napply {}\n",
            std::process::id(),
            apply.id()
        );
        std::fs::write(&lock, &live).unwrap();
        let functions = &LOCK[..LOCK.find("\ni=0\n").unwrap()];
        let script = format!(
            "set -u\nS={}\nN=00000000000000ff\n{functions}\ntake_over 999999999\n",
            quote(&dir.path().display().to_string())
        );
        let output = sh(&script);
        let running = apply.try_wait().unwrap().is_none();
        apply.kill().unwrap();
        apply.wait().unwrap();
        assert!(output.status.success(), "{output:?}");
        assert!(running, "the live lock's apply was stopped");
        assert_eq!(std::fs::read_to_string(&lock).unwrap(), live);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["lock"]);
    }

    /// A holder whose lock is no longer its own when it ends (taken over) leaves that lock,
    /// and the apply it names, alone.
    #[test]
    fn a_holder_leaves_a_lock_that_is_no_longer_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("lock");
        let mut other = std::process::Command::new("sleep").arg("3623").spawn().unwrap();
        let others = format!("{0}\n00000000000000aa\nthe other pacha\napply {0}\n", other.id());
        let script = format!(
            "set -u\nS={}\nN=00000000000000ff\nW=1\nHOLDER=test\n{LOCK}printf '%s' {} >| \"$S/lock\"\n",
            quote(&dir.path().display().to_string()),
            quote(&others)
        );
        let output = sh(&script);
        let running = other.try_wait().unwrap().is_none();
        other.kill().unwrap();
        other.wait().unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(std::fs::read_to_string(&lock).unwrap(), others);
        assert!(running, "the other pacha's apply was stopped");
    }

    /// A plain placement of `files` (no script, nothing removed).
    fn placing<'a>(files: &'a [Placement], changed: &'a [NodePath]) -> Apply<'a> {
        Apply {
            node: "web1",
            state: "production",
            pre: &[],
            files,
            post: &[],
            changed,
            remove: &[],
            remove_dirs: &[],
            links: &[],
            dirs: &[],
            health: &[],
            revert_on_failure: true,
            confirm: None,
            script_timeout: None,
            journal: b"pacha-journal 1\n",
        }
    }

    /// A file to place: `content` with `mode`, no owner, folders 0755.
    fn placement(path: &str, content: &[u8], mode: u32) -> Placement {
        Placement {
            destination: NodePath::parse(path).unwrap(),
            content: std::sync::Arc::from(content),
            sha256: pacha_core::ContentHash::of(content),
            owner: None,
            group: None,
            mode: Mode::from_bits(mode).unwrap(),
            dir_mode: Mode::EXECUTABLE,
            validate: None,
        }
    }

    /// Runs `command` with `input` on its standard input: from a file in `dir` holding it
    /// alone (as a held session gives it), or from a pipe, followed by `after`.
    fn run_with_input(
        mut command: std::process::Command,
        input: &[u8],
        from_file: Option<&std::path::Path>,
        after: &[u8],
    ) -> std::process::Output {
        if let Some(file) = from_file {
            std::fs::write(file, input).unwrap();
            return command.stdin(std::fs::File::open(file).unwrap()).output().unwrap();
        }
        let mut child = command.stdin(std::process::Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), input).unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), after).unwrap();
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// The files' tar stream, read by tar (from a pipe that stays open, and from a file) and by
    /// the `head -c` run a node without tar uses: the same files, contents, modes and names (a
    /// long one too), and the end marker checked.
    #[test]
    fn the_files_stream_is_read_with_and_without_tar() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let long = format!("/etc/{}/{}.conf", "d".repeat(120), "n".repeat(150));
        let contents: [(&str, Vec<u8>, u32); 5] = [
            ("/etc/a.conf", b"alpha\n".to_vec(), 0o644),
            ("/etc/empty", Vec::new(), 0o600),
            ("/etc/run.sh", b"#!/bin/sh\n".to_vec(), 0o2755),
            ("/srv/big.bin", (0..70_000u32).map(|i| (i % 251) as u8).collect(), 0o755),
            (long.as_str(), b"far down\n".to_vec(), 0o640),
        ];
        let files: Vec<Placement> = contents
            .iter()
            .map(|(path, content, mode)| placement(path, content, *mode))
            .collect();
        // Runs the snippet's file part (after making the staging folders) with `input`, from a
        // pipe followed by more input or (`from_file`) from a file holding the stream alone.
        let run = |nonce: &str, without_tar: bool, from_file: bool, input: &[u8]| {
            let targets = Targets::of(&files, &root, nonce);
            let mut snippet = Snippet::default();
            snippet.contents(&[], &files, None, &targets, nonce);
            snippet.attributes(&files, &targets);
            let mut script = format!("set -u\numask 077\nN={nonce}\nfail() {{ echo \"$1\" >&2; exit 1; }}\n");
            if without_tar {
                script.push_str("command() { return 1; }\n");
            }
            for folder in &targets.folders {
                script.push_str(&format!("mkdir -p {}\n", quote(&targets.staging(folder))));
            }
            script.push_str(&snippet.script);
            if !from_file {
                // What follows the stream on the input is still there to read (a confirmation).
                script.push_str("after=$(wc -c); [ \"$after\" = 5 ] || fail \"$after bytes after the stream\"\n");
            }
            let stream = if input.is_empty() { &snippet.input[..] } else { input };
            let mut command = std::process::Command::new("/bin/sh");
            command.arg("-c").arg(&script).stderr(std::process::Stdio::piped());
            let file = dir.path().join(format!("in-{nonce}"));
            let output = run_with_input(command, stream, from_file.then_some(file.as_path()), b"next\n");
            (targets, snippet.input, output)
        };
        for (without_tar, from_file) in [(false, false), (false, true), (true, false)] {
            let _ = std::fs::remove_dir_all(dir.path().join("etc"));
            let _ = std::fs::remove_dir_all(dir.path().join("srv"));
            let nonce = format!("fffffffffffffff{}", u8::from(without_tar) * 2 + u8::from(from_file));
            let (targets, _, output) = run(&nonce, without_tar, from_file, &[]);
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            for ((_, content, mode), staged) in contents.iter().zip(targets.staged()) {
                let how = format!("{staged} (without tar: {without_tar}, from a file: {from_file})");
                assert_eq!(&std::fs::read(staged).unwrap(), content, "{how}");
                let placed = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(staged).unwrap().permissions());
                assert_eq!(placed & 0o7777, *mode, "{how}");
            }
        }
        // A stream cut short is refused: in the middle of a member, and at each block boundary
        // near its end (before the last member's headers, between them, before its data),
        // where a tar may end well having read whole members only.
        for (without_tar, from_file) in [(false, false), (false, true), (true, false)] {
            let (_, whole, _) = run("fffffffffffffff5", without_tar, from_file, &[]);
            let members_end = whole.len() - 1024;
            let mut cuts = vec![whole.len() / 2, 512];
            cuts.extend((1..=8).map(|blocks| members_end - 512 * blocks));
            if without_tar {
                // Every member whole, the end blocks missing.
                cuts.push(members_end);
            }
            for cut in cuts {
                let _ = std::fs::remove_dir_all(dir.path().join("etc"));
                let _ = std::fs::remove_dir_all(dir.path().join("srv"));
                let (_, _, output) = run("fffffffffffffff5", without_tar, from_file, &whole[..cut]);
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert!(
                    !output.status.success() && (stderr.contains("cannot write") || stderr.contains("ended early")),
                    "a stream cut at {cut} of {} is refused (without tar: {without_tar}, from a file: {from_file}): {stderr}",
                    whole.len()
                );
            }
        }
    }

    /// The held runner, each frame in the background with `setsid`, in the foreground without
    /// it, and in its own foreground (`F`, a plain placement): each frame's snippet runs with
    /// its input, its `$1` the id of a process of its own (never the runner's: stopping it must
    /// not stop the lock's holder), its own EXIT trap, and the answer carries its output, exit
    /// status and stderr; two frames in a row (an `exit` in one does not end the runner), then
    /// the input ends and the runner with it.
    #[test]
    fn the_held_runner_runs_each_frame_in_each_way() {
        let snippet = "set -u\nG=${1-$$}\ncase $G in ''|*[!0-9]*) exit 9;; esac\nprintf 'pid %s\\n' \"$G\"\nIFS= read -r line\nprintf 'got %s\\n' \"$line\"\ntrap 'printf \"cleaned\\\\n\"' EXIT\nprintf 'oops\\n' >&2\nexit 3\n";
        for (way, without_setsid, here) in [
            ("setsid", false, false),
            ("without setsid", true, false),
            ("here", false, true),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let nonce = "00000000000000bb";
            // `unstage` comes with the lock, which this runner goes without.
            let mut script = format!(
                "S={}\nN={nonce}\nunstage() {{ :; }}\n",
                quote(&dir.path().display().to_string())
            );
            if without_setsid {
                script.push_str("command() { return 1; }\n");
            }
            script.push_str(HELD_RUNNER);
            let frames: Vec<Vec<u8>> = ["first input\n", "second input\n"]
                .iter()
                .map(|input| {
                    let mut frame = crate::session::Frame::new(snippet, input.as_bytes(), nonce, here)
                        .header
                        .into_bytes();
                    frame.extend_from_slice(snippet.as_bytes());
                    frame.extend_from_slice(input.as_bytes());
                    frame
                })
                .collect();
            let mut held = Runner::start(&script);
            let runner = held.child.id().to_string();
            let answers: Vec<_> = frames.iter().map(|frame| held.answer(frame, nonce, way)).collect();
            // Its input ended: the runner ends too.
            held.finish();
            let mut pids = Vec::new();
            for (answer, input) in answers.iter().zip(["first input", "second input"]) {
                assert_eq!(answer.status, Some(3), "{way}");
                let stdout = String::from_utf8_lossy(&answer.stdout);
                let (pid, rest) = stdout
                    .strip_prefix("pid ")
                    .and_then(|rest| rest.split_once('\n'))
                    .unwrap_or_else(|| panic!("{way}: {stdout}"));
                assert_ne!(pid, runner, "{way}: the apply's id is the runner's");
                pids.push(pid.to_owned());
                assert_eq!(rest, format!("got {input}\ncleaned\n"), "{way}");
                assert_eq!(String::from_utf8_lossy(&answer.stderr), "oops\n");
            }
            assert_ne!(pids[0], pids[1], "{way}: each frame runs in a process of its own");
            assert_eq!(
                std::fs::read(dir.path().join("held.in")).unwrap(),
                b"",
                "the input is emptied"
            );
        }
    }

    /// pacha gone while it sends a frame: the runner gets only the beginning of the snippet
    /// (`head -c` ends well on less than it asked for) and runs it; a snippet made whole or
    /// nothing runs none of it, wherever it is cut. (A plain one's first line runs: what the
    /// wrapper is for.)
    #[test]
    fn a_held_snippet_cut_short_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("ran");
        let body = format!(
            "printf 'first\\n' >> {0}\nprintf 'second\\n' >> {0}\nrun() {{ printf 'third\\n' >> {0}; }}\nrun\n",
            quote(&mark.display().to_string())
        );
        let nonce = "00000000000000dd";
        let runner = |snippet: &str, cut: usize| {
            let _ = std::fs::remove_file(&mark);
            let mut script = format!(
                "S={}\nN={nonce}\nunstage() {{ :; }}\n",
                quote(&dir.path().display().to_string())
            );
            script.push_str(HELD_RUNNER);
            let mut frame = crate::session::Frame::new(snippet, b"", nonce, true)
                .header
                .into_bytes();
            frame.extend_from_slice(&snippet.as_bytes()[..cut]);
            let mut child = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(&script)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), &frame).unwrap();
            drop(child.stdin.take());
            child.wait().unwrap();
            std::fs::read_to_string(&mark).unwrap_or_default()
        };
        let whole = whole_or_nothing(&body);
        assert_eq!(runner(&whole, whole.len()), "first\nsecond\nthird\n", "whole, it runs");
        // All but the last newline is the whole call.
        for cut in 1..whole.len() - 1 {
            assert_eq!(
                runner(&whole, cut),
                "",
                "cut at {cut} of {}: {:?}",
                whole.len(),
                &whole[..cut]
            );
        }
        let line = body.find('\n').unwrap() + 1;
        assert_eq!(runner(&body, line), "first\n", "a plain snippet's beginning runs");
    }

    /// A placement without scripts, run for real under a held lock, its input from a file as a
    /// held session gives it and from a pipe: the files land with their modes, the journal is
    /// stored, and it makes no run folder and leaves nothing behind in the state folder.
    #[test]
    fn a_plain_placement_needs_no_run_folder() {
        for from_file in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root").display().to_string();
            let files: Vec<Placement> = [("/etc/a.conf", 0o644), ("/etc/b/secret", 0o600), ("/opt/run", 0o755)]
                .iter()
                .map(|(path, mode)| placement(path, path.as_bytes(), *mode))
                .collect();
            let changed: Vec<NodePath> = files.iter().map(|file| file.destination.clone()).collect();
            let request = placing(&files, &changed);
            let nonce = "00000000000000aa";
            // A held snippet's input is a file; one on a command line of its own reads a pipe.
            let (snippet, input) = apply(&request, &apply_steps(&request)[0], &root, nonce, from_file);
            assert_eq!(snippet.contains("pacha-journal"), from_file, "{snippet}");
            assert!(!snippet.contains("mkdir -- \"$T\""), "{snippet}");
            let state = format!("{root}/var/lib/pacha");
            std::fs::create_dir_all(&state).unwrap();
            std::fs::write(
                format!("{state}/lock"),
                format!("{}\n{nonce}\nthe test\n", std::process::id()),
            )
            .unwrap();
            let mut command = std::process::Command::new("/bin/sh");
            // `$1`: the apply's id, as the held runner gives it.
            command
                .arg("-c")
                .arg(&snippet)
                .args(["sh", "4242"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let file = dir.path().join("in");
            let output = run_with_input(command, &input, from_file.then_some(file.as_path()), b"");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success() && stdout.contains(&format!("DONE-{nonce}")),
                "{stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            for file in &files {
                let placed = dir
                    .path()
                    .join("root")
                    .join(file.destination.as_str().trim_start_matches('/'));
                assert_eq!(std::fs::read(&placed).unwrap(), &file.content[..]);
                let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&placed).unwrap().permissions());
                assert_eq!(mode & 0o7777, file.mode.bits(), "{placed:?} (from a file: {from_file})");
            }
            assert_eq!(std::fs::read(format!("{state}/journal")).unwrap(), b"pacha-journal 1\n");
            let mut left: Vec<String> = std::fs::read_dir(&state)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            left.sort();
            assert_eq!(left, ["journal", "lock"], "from a file: {from_file}");
            // The lock was told of the apply and of its end, with the same id; held, of the
            // staging folders it leaves to the lock's release.
            let lock = std::fs::read_to_string(format!("{state}/lock")).unwrap();
            let told: Vec<&str> = lock.lines().skip(3).collect();
            let staging = ["etc", "etc/b", "opt"].map(|folder| format!("{root}/{folder}/.pacha-{nonce}"));
            if from_file {
                let staged = format!(
                    "staged {}",
                    staging.iter().map(|p| quote(p)).collect::<Vec<_>>().join(" ")
                );
                assert_eq!(told, ["apply 4242", staged.as_str(), "applied 4242"], "{lock}");
            } else {
                assert_eq!(told, ["apply 4242", "applied 4242"], "{lock}");
            }
            for folder in &staging {
                assert_eq!(std::path::Path::new(folder).exists(), from_file, "{folder}");
            }
        }
    }

    /// Plain placements under the real lock and held runner, frames placing into the same
    /// folders, one of them named with a newline: the first's staging folders are gone before
    /// the second makes its own (same names), and what the last staged, though it failed, goes
    /// with the lock when the input ends.
    #[test]
    fn staging_folders_left_to_the_lock_go_before_the_next_frame_and_with_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root").display().to_string();
        let state = format!("{root}/var/lib/pacha");
        std::fs::create_dir_all(&state).unwrap();
        let nonce = "00000000000000ee";
        let frame = |text: &str| {
            let files: Vec<Placement> = ["/etc/a.conf", "/srv/two\nlines/b"]
                .iter()
                .map(|path| placement(path, text.as_bytes(), 0o644))
                .collect();
            let changed: Vec<NodePath> = files.iter().map(|file| file.destination.clone()).collect();
            let request = placing(&files, &changed);
            let step = &apply_steps(&request)[0];
            assert!(plain_placement(&request, step));
            let (snippet, input) = apply(&request, step, &root, nonce, true);
            let mut bytes = crate::session::Frame::new(&snippet, &input, nonce, true)
                .header
                .into_bytes();
            bytes.extend_from_slice(snippet.as_bytes());
            bytes.extend_from_slice(&input);
            bytes
        };
        let mut script = format!("set -u\nS={}\nN={nonce}\nW=1\nHOLDER=test\n", quote(&state));
        script.push_str(LOCK);
        script.push_str(HELD_RUNNER);
        let mut held = Runner::start(&script);
        for text in ["first\n", "second\n"] {
            let answer = held.answer(&frame(text), nonce, text);
            assert_eq!(
                answer.status,
                Some(0),
                "{text}: {}{}",
                String::from_utf8_lossy(&answer.stdout),
                String::from_utf8_lossy(&answer.stderr)
            );
        }
        for placed in ["etc/a.conf", "srv/two\nlines/b"] {
            assert_eq!(std::fs::read(format!("{root}/{placed}")).unwrap(), b"second\n");
        }
        // A frame that fails once its files are staged (a folder where a file goes): what it
        // staged goes with the lock too.
        let blocked = format!("{root}/srv/two\nlines/b");
        std::fs::remove_file(&blocked).unwrap();
        std::fs::create_dir_all(format!("{blocked}/in-the-way")).unwrap();
        let answer = held.answer(&frame("third\n"), nonce, "third");
        assert_ne!(answer.status, Some(0), "{}", String::from_utf8_lossy(&answer.stdout));
        assert!(String::from_utf8_lossy(&answer.stderr).contains("cannot place files"));
        assert!(held.finish().success());
        assert_eq!(std::fs::read(format!("{root}/etc/a.conf")).unwrap(), b"third\n");
        let mut left = Vec::new();
        let mut folders = vec![std::path::PathBuf::from(&root)];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path.clone());
                }
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with(".pacha-") || name == "lock" {
                    left.push(path);
                }
            }
        }
        assert!(left.is_empty(), "{left:?}");
    }

    /// The snippet of a small plan: two folders, an owner and modes, a file that needs
    /// escaping, one streamed on standard input, a pre and a post script. The riskiest code
    /// pacha has; any change to what it sends a node shows here.
    #[test]
    fn apply_snippet_of_a_small_plan() {
        use std::sync::Arc;

        use pacha_core::ContentHash;

        let file = |path: &str, content: &[u8], owner: Option<&str>, mode: u32| Placement {
            destination: NodePath::parse(path).unwrap(),
            content: Arc::from(content),
            sha256: ContentHash::of(content),
            owner: owner.map(str::to_owned),
            group: owner.map(|_| "adm".to_owned()),
            mode: Mode::from_bits(mode).unwrap(),
            dir_mode: Mode::EXECUTABLE,
            validate: None,
        };
        let script = |stage, phase: &str, name: &str| PlannedScript {
            stage,
            phase: phase.to_owned(),
            name: name.to_owned(),
            source: format!("scripts/{stage}/{phase}/{name}"),
            content: Arc::from(
                &b"#!/bin/sh
echo hi
"[..],
            ),
            sha256: ContentHash::of(
                b"#!/bin/sh
echo hi
",
            ),
            handles: Vec::new(),
        };
        let big = vec![b'x'; 16 * 1024 + 1];
        let files = [
            file(
                "/etc/app/app.conf",
                b"port = 80
",
                Some("root"),
                0o640,
            ),
            file(
                "/etc/app/it's $(x).txt",
                b"100% -n
",
                None,
                0o644,
            ),
            file("/srv/www/big.bin", &big, None, 0o600),
        ];
        let pre = script(Stage::Pre, "check", "10-check");
        let post = script(Stage::Post, "reload", "10-reload");
        let changed: Vec<NodePath> = files.iter().map(|file| file.destination.clone()).collect();
        let request = Apply {
            node: "web1",
            state: "production",
            pre: &[&pre],
            files: &files,
            post: &[&post],
            changed: &changed,
            remove: &[NodePath::parse("/etc/app/old.conf").unwrap()],
            remove_dirs: &[NodePath::parse("/etc/default-site").unwrap()],
            links: &[(
                NodePath::parse("/etc/systemd/system/multi-user.target.wants/app.service").unwrap(),
                "/lib/systemd/system/app.service".to_owned(),
            )],
            dirs: &[PlannedDir {
                path: NodePath::parse("/srv/www/cache").unwrap(),
                owner: Some("www-data".to_owned()),
                group: None,
                mode: Mode::from_bits(0o2770).unwrap(),
                app: "app".to_owned(),
            }],
            health: &[],
            revert_on_failure: true,
            confirm: None,
            script_timeout: Some(600),
            journal: b"pacha-journal 1\n",
        };
        let steps = apply_steps(&request);
        assert_eq!(steps.len(), 1);
        let (snippet, input) = apply(&request, &steps[0], "/srv/root", "0123456789abcdef", true);
        let (on_a_command_line, _) = apply(&request, &steps[0], "/srv/root", "0123456789abcdef", false);
        assert!(
            !on_a_command_line.contains("pacha-journal"),
            "the journal is not on a command line"
        );
        // The scripts come first; the small journal is written by the snippet itself.
        let before_files = 2 * pre.content.len();
        for file in &files {
            assert!(
                input[before_files..]
                    .windows(file.content.len())
                    .any(|window| window == &file.content[..]),
                "every content travels on standard input"
            );
        }
        assert_eq!((input.len() - before_files) % 512, 0, "the files are one tar stream");
        assert!(!snippet.contains("port = 80"), "no content is in the command");
        insta::assert_snapshot!(snippet);
    }
}
