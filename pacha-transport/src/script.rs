//! The POSIX shell snippets pacha runs on a node, built in one place. Every value goes in
//! through [`quote`]; the node needs only `sh` and coreutils (`stat`, `sha256sum`, `head`,
//! `mv`, `chmod`, `chown`, `sync`).
//!
//! Node-side state lives under `<root>/var/lib/pacha`: the lock (`lock/`), and the list of
//! paths whose post scripts are still due (`pending-post`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use pacha_core::{Apply, Mode, NodePath, Placement, PlannedScript};

use crate::shell::quote;

/// How long a push waits for another pacha to release a node by default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Exit status of a snippet that found the node locked by another pacha.
pub const EXIT_LOCKED: i32 = 75;
/// Exit status of an apply whose pre script failed (nothing placed).
pub const EXIT_PRE_FAILED: i32 = 70;
/// Exit status of an apply whose post script failed (files placed).
pub const EXIT_POST_FAILED: i32 = 71;

/// The longest snippet sent as one command: sshd hands it to the login shell as one argument,
/// and Linux limits one argument to 128 KiB.
pub const MAX_SCRIPT: usize = 96 * 1024;

/// The node's state folder under `root`.
pub fn state_dir(root: &str) -> String {
    NodePath::parse("/var/lib/pacha")
        .map(|path| path.under_root(root))
        .unwrap_or_else(|_| format!("{}/var/lib/pacha", root.trim_end_matches('/')))
}

const LOCK: &str = r#"alive() { [ -d "/proc/$1" ] || kill -0 "$1" 2>/dev/null; }
[ -d "$S" ] || { mkdir -p "$S" && chmod 700 "$S"; } || { echo "cannot create $S" >&2; exit 1; }
i=0
until mkdir "$S/lock" 2>/dev/null; do
  pid=; { read -r pid < "$S/lock/pid"; } 2>/dev/null
  if [ -n "$pid" ] && ! alive "$pid"; then rm -rf "$S/lock"; continue; fi
  i=$((i + 1))
  if [ "$i" -gt "$W" ]; then
    holder=; { read -r holder < "$S/lock/holder"; } 2>/dev/null
    printf 'LOCKED %s\n' "${holder:-another pacha}"; exit 75
  fi
  sleep 0.05 2>/dev/null || sleep 1
done
trap 'rm -rf "$S/lock"' EXIT
trap 'exit 1' HUP INT TERM PIPE
printf '%s\n' "$$" > "$S/lock/pid"
printf '%s\n' "$N" > "$S/lock/nonce"
"#;

const CLASSIFY: &str = r#"c=
for p do
  shift
  if [ -L "$p" ]; then c="${c}L"
  elif [ -f "$p" ]; then c="${c}F"; set -- "$@" "$p"
  elif [ -e "$p" ]; then c="${c}O"
  else c="${c}M"; fi
done
printf 'C %s\n' "$c"
if [ "$#" -gt 0 ]; then
  stat -c '%a:%u:%g:%s:%U:%G' -- "$@" || exit 91
  sha256sum -- "$@" || exit 92
"#;

/// The snippet that reads `paths` (absolute on the node, root included): for each, its kind;
/// for regular files, mode, owner, group, size and SHA-256 (and contents when asked); then the
/// pending post scripts. With `lock`, it first takes the node's lock (waiting up to `lock_wait`
/// for another pacha to finish) and then holds it until its standard input is closed.
pub fn inspect(
    state: &str,
    nonce: &str,
    paths: &[String],
    contents: bool,
    lock: Option<&str>,
    lock_wait: Duration,
) -> String {
    let mut script = String::with_capacity(1024 + paths.iter().map(|p| p.len() + 3).sum::<usize>());
    let _ = writeln!(script, "set -u\nS={}\nN={}", quote(state), quote(nonce));
    if let Some(holder) = lock {
        let _ = writeln!(script, "W={}", lock_wait.as_millis() / 50);
        script.push_str(LOCK);
        let _ = writeln!(script, "printf '%s\\n' {} > \"$S/lock/holder\"", quote(holder));
        script.push_str("[ -f \"$S/pending-post\" ] && { printf 'P %s\\n' \"$(wc -c < \"$S/pending-post\")\"; cat \"$S/pending-post\"; }\n");
    }
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
        // Hold the lock until pacha closes our input (or the connection drops).
        script.push_str("cat > /dev/null\n");
    }
    script
}

/// One exchange of an apply: a slice of the files, with the scripts that belong to it.
#[derive(Debug, Clone, Copy)]
pub struct ApplyStep<'a> {
    pub pre: &'a [&'a PlannedScript],
    pub files: &'a [Placement],
    pub post: &'a [&'a PlannedScript],
    /// Whether this step records the due post scripts (the first step that places files).
    pub record_pending: bool,
}

/// Splits an apply into steps whose snippets fit in one command: usually one step; pre
/// scripts go with the first, post scripts with the last.
pub fn apply_steps<'a>(request: &'a Apply<'a>) -> Vec<ApplyStep<'a>> {
    let mut chunks: Vec<&'a [Placement]> = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (index, file) in request.files.iter().enumerate() {
        // A file costs its destination about five times in the snippet.
        let cost = 5 * (file.destination.as_str().len() + 40);
        if size + cost > MAX_SCRIPT / 2 && index > start {
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
            record_pending: index == 0 && !request.post.is_empty(),
        })
        .collect()
}

/// The snippet of one apply step and the bytes to send on its standard input.
///
/// It checks that this push holds the node's lock; reads script and file contents from its
/// input into private temp files (files in their target's folder); checks the input arrived
/// whole; fsyncs and sets owner and mode; runs the pre scripts (stopping at the first
/// failure, with nothing placed); records the due post scripts; renames each temp file over
/// its target (replacing a symlink, never following it); reports the placed files'
/// attributes; runs the post scripts and, when all succeed, clears the due record.
pub fn apply(request: &Apply<'_>, step: &ApplyStep<'_>, root: &str, nonce: &str) -> (String, Vec<u8>) {
    let state = state_dir(root);
    let cd_root = if root.is_empty() { "/" } else { root };
    let mut script = String::with_capacity(4096);
    let mut input: Vec<u8> = Vec::new();
    let _ = writeln!(
        script,
        "set -u\numask 077\nS={}\nN={}\nR={}\nT=\"$S/run.$N\"",
        quote(&state),
        quote(nonce),
        quote(cd_root)
    );
    script.push_str(
        r#"fail() { printf '%s\n' "$1" >&2; exit "${2:-1}"; }
held=; { read -r held < "$S/lock/nonce"; } 2>/dev/null
[ "$held" = "$N" ] || fail "this push does not hold the node's lock" 76
mkdir "$T" || fail "cannot create $T"
"#,
    );
    let temps: Vec<String> = step
        .files
        .iter()
        .enumerate()
        .map(|(index, file)| {
            let target = file.destination.under_root(root);
            let folder = target.rsplit_once('/').map_or("", |(folder, _)| folder).to_owned();
            format!("{folder}/.pacha-{nonce}-{index}")
        })
        .collect();
    let _ = writeln!(
        script,
        "cleanup() {{ rm -rf \"$T\"; {}; }}",
        if temps.is_empty() {
            ":".to_owned()
        } else {
            format!("rm -f -- {}", join_quoted(&temps))
        }
    );
    script.push_str("trap cleanup EXIT\ntrap 'exit 1' HUP INT TERM PIPE\n");
    script.push_str(
        r#"w() { head -c "$1" > "$2" || fail "cannot write $2"; }
md() { [ -d "$1" ] || { mkdir "$1" && chmod "$2" "$1"; } || fail "cannot create folder $1"; }
run() {
  ( cd "$R" 2>/dev/null || cd /; PACHA_STAGE=$2 PACHA_PHASE=$3 PACHA_SCRIPT=$4 exec "$T/$1" ) < /dev/null > "$T/out" 2>&1
  st=$?
  printf 'S %s %s %s\n' "$1" "$st" "$(wc -c < "$T/out")"
  cat "$T/out"
  return "$st"
}
"#,
    );
    let changed: Vec<String> = request.changed.iter().map(|path| path.under_root(root)).collect();
    let _ = writeln!(
        script,
        "PACHA_NODE={} PACHA_STATE={} PACHA_ROOT={} PACHA_CHANGED={}\nexport PACHA_NODE PACHA_STATE PACHA_ROOT PACHA_CHANGED",
        quote(request.node),
        quote(request.state),
        quote(cd_root),
        quote(&changed.join("\n"))
    );

    // Scripts of this step, uploaded in run order.
    let scripts: Vec<&PlannedScript> = step.pre.iter().chain(step.post).copied().collect();
    for (index, planned) in scripts.iter().enumerate() {
        let _ = writeln!(script, "w {} \"$T/{index}\"", planned.content.len());
        input.extend_from_slice(&planned.content);
    }
    // Folders: the root, then every missing folder on the way to each file.
    if !step.files.is_empty() {
        let _ = writeln!(
            script,
            "[ -d \"$R\" ] || (umask 022 && mkdir -p \"$R\") || fail \"cannot create $R\""
        );
    }
    let mut folders: BTreeMap<String, Mode> = BTreeMap::new();
    for file in step.files {
        let mut parent = file.destination.parent();
        while let Some(folder) = parent {
            if folder.as_str() == "/" {
                break;
            }
            folders.entry(folder.under_root(root)).or_insert(file.dir_mode);
            parent = folder.parent();
        }
    }
    for (folder, mode) in &folders {
        let _ = writeln!(script, "md {} {mode}", quote(folder));
    }
    for (file, temp) in step.files.iter().zip(&temps) {
        let _ = writeln!(script, "w {} {}", file.content.len(), quote(temp));
        input.extend_from_slice(&file.content);
    }
    let _ = writeln!(
        script,
        "IFS= read -r end || fail 'the input ended early' 81\n[ \"$end\" = \"END-$N\" ] || fail 'the input arrived damaged' 81"
    );
    input.extend_from_slice(format!("END-{nonce}\n").as_bytes());
    if !scripts.is_empty() {
        script.push_str("chmod 700 \"$T\"/[0-9]*\n");
    }
    if !temps.is_empty() {
        script.push_str(&format!("sync -- {} 2>/dev/null || sync\n", join_quoted(&temps)));
        // Owner first: chown clears setuid and setgid bits, chmod then sets them.
        let mut by_owner: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        let mut by_mode: BTreeMap<Mode, Vec<&str>> = BTreeMap::new();
        for (file, temp) in step.files.iter().zip(&temps) {
            let owner = match (&file.owner, &file.group) {
                (Some(owner), Some(group)) => Some(format!("{owner}:{group}")),
                (Some(owner), None) => Some(owner.clone()),
                (None, Some(group)) => Some(format!(":{group}")),
                (None, None) => None,
            };
            if let Some(owner) = owner {
                by_owner.entry(owner).or_default().push(temp);
            }
            by_mode.entry(file.mode).or_default().push(temp);
        }
        for (owner, group) in &by_owner {
            let _ = writeln!(
                script,
                "chown {} -- {} || fail {}",
                quote(owner),
                join_quoted(group),
                quote(&format!("cannot set owner {owner}"))
            );
        }
        for (mode, group) in &by_mode {
            let _ = writeln!(
                script,
                "chmod {mode} -- {} || fail 'cannot set mode {mode}'",
                join_quoted(group)
            );
        }
    }
    let mut index = 0;
    for planned in step.pre {
        let _ = writeln!(
            script,
            "run {index} pre {} {} || exit {EXIT_PRE_FAILED}",
            quote(&planned.phase),
            quote(&planned.name)
        );
        index += 1;
    }
    if step.record_pending {
        let listed: Vec<String> = request.changed.iter().map(|path| path.as_str().to_owned()).collect();
        let _ = writeln!(
            script,
            "printf '%s\\000' {} > \"$S/pending-post.$N\" && mv -f \"$S/pending-post.$N\" \"$S/pending-post\" || fail 'cannot record the due post scripts'",
            join_quoted(&listed)
        );
    }
    if !step.files.is_empty() {
        for (file, temp) in step.files.iter().zip(&temps) {
            let target = file.destination.under_root(root);
            let _ = writeln!(
                script,
                "mv -f -T -- {} {} || fail {}",
                quote(temp),
                quote(&target),
                quote(&format!("cannot place {target}"))
            );
        }
        script.push_str("printf 'PLACED\\n'\n");
        let _ = writeln!(
            script,
            "sync -- {} 2>/dev/null",
            join_quoted(&folders.keys().cloned().collect::<Vec<_>>())
        );
        let targets: Vec<String> = step
            .files
            .iter()
            .map(|file| file.destination.under_root(root))
            .collect();
        let _ = writeln!(
            script,
            "printf 'A\\n'\nstat -c '%a:%u:%g:%s:%U:%G' -- {} || exit 94",
            join_quoted(&targets)
        );
    }
    for planned in step.post {
        let _ = writeln!(
            script,
            "run {index} post {} {} || exit {EXIT_POST_FAILED}",
            quote(&planned.phase),
            quote(&planned.name)
        );
        index += 1;
    }
    if !step.post.is_empty() {
        script.push_str("rm -f \"$S/pending-post\"\n");
    }
    script.push_str("printf 'DONE-%s\\n' \"$N\"\n");
    (script, input)
}

fn join_quoted<S: AsRef<str>>(values: &[S]) -> String {
    values
        .iter()
        .map(|value| quote(value.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}
