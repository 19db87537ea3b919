//! Reading what the node's snippets print: pure functions over bytes.

use pacha_core::{ContentHash, DirStat, FileStat, Inspection, LiveFile, Mode, NodePath, ScriptRun};

/// What an inspect snippet reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inspected {
    /// Another pacha holds the node; its holder text.
    Locked(String),
    /// A folder under the root is a symlink leading out of it.
    Symlinked(String),
    Done(Inspection),
}

/// Attributes of a file as `stat -c '%a:%u:%g:%s:%U:%G'` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatLine {
    pub mode: Mode,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub owner: String,
    pub group: String,
}

impl StatLine {
    pub(crate) fn with_hash(self, sha256: ContentHash) -> FileStat {
        FileStat {
            sha256,
            size: self.size,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            owner: self.owner,
            group: self.group,
        }
    }
}

/// A cursor over the snippet's output.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn line(&mut self) -> Result<&'a [u8], String> {
        let rest = &self.bytes[self.at..];
        let end = rest.iter().position(|byte| *byte == b'\n').ok_or_else(|| {
            format!(
                "output ends in the middle of a line: {:?}",
                String::from_utf8_lossy(&rest[..rest.len().min(80)])
            )
        })?;
        self.at += end + 1;
        Ok(&rest[..end])
    }

    fn text_line(&mut self) -> Result<&'a str, String> {
        let line = self.line()?;
        std::str::from_utf8(line).map_err(|_| format!("unexpected bytes: {:?}", String::from_utf8_lossy(line)))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let rest = &self.bytes[self.at..];
        if rest.len() < len {
            return Err(format!("output ends {} bytes early", len - rest.len()));
        }
        self.at += len;
        Ok(&rest[..len])
    }

    /// The bytes up to `marker`, which is passed over too.
    fn until(&mut self, marker: &[u8]) -> Result<&'a [u8], String> {
        let rest = &self.bytes[self.at..];
        let end = rest
            .windows(marker.len())
            .position(|window| window == marker)
            .ok_or_else(|| format!("output ends before {:?}", String::from_utf8_lossy(marker)))?;
        self.at += end + marker.len();
        Ok(&rest[..end])
    }

    fn peek_starts_with(&self, prefix: &[u8]) -> bool {
        self.bytes[self.at..].starts_with(prefix)
    }

    fn at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

/// What the snippet printed after its start marker: a login shell may print a banner or
/// anything else first (a chatty `.bashrc`), which is passed over.
pub(crate) fn after_begin<'a>(output: &'a [u8], nonce: &str) -> Result<&'a [u8], String> {
    let marker = format!("BEGIN-{nonce}\n");
    output
        .windows(marker.len())
        .position(|window| window == marker.as_bytes())
        .map(|at| &output[at + marker.len()..])
        .ok_or_else(|| {
            let start = String::from_utf8_lossy(&output[..output.len().min(120)]).into_owned();
            if start.is_empty() {
                "no answer (is /bin/sh a POSIX shell on the node?)".to_owned()
            } else {
                format!("no answer from pacha's snippet; the node printed {start:?}")
            }
        })
}

/// The folder a snippet refused to go through, when its output (from `reader`'s position)
/// starts with `SYMLINK <folder>`.
fn symlinked(reader: &Reader<'_>) -> Option<String> {
    let rest = reader.bytes[reader.at..].strip_prefix(b"SYMLINK ")?;
    let end = rest.iter().position(|byte| *byte == b'\n').unwrap_or(rest.len());
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// The folder a snippet refused to go through, when it printed `SYMLINK <folder>` first.
pub(crate) fn symlinked_answer(output: &[u8], nonce: &str) -> Option<String> {
    let output = after_begin(output, nonce).ok()?;
    symlinked(&Reader { bytes: output, at: 0 })
}

/// Parses one stat line.
pub(crate) fn parse_stat(line: &str) -> Result<StatLine, String> {
    let fields: Vec<&str> = line.splitn(6, ':').collect();
    let [mode, uid, gid, size, owner, group] = fields.as_slice() else {
        return Err(format!("not a stat line: {line:?}"));
    };
    let number = |text: &str| text.parse::<u64>().map_err(|_| format!("not a stat line: {line:?}"));
    let mode = u32::from_str_radix(mode, 8)
        .ok()
        .and_then(|bits| Mode::from_bits(bits & 0o7777).ok())
        .ok_or_else(|| format!("bad mode in {line:?}"))?;
    Ok(StatLine {
        mode,
        uid: u32::try_from(number(uid)?).map_err(|err| err.to_string())?,
        gid: u32::try_from(number(gid)?).map_err(|err| err.to_string())?,
        size: number(size)?,
        owner: (*owner).to_owned(),
        group: (*group).to_owned(),
    })
}

/// Parses one `sha256sum` line: the digest, with the leading `\` GNU adds when the file name
/// needed escaping.
pub(crate) fn parse_sha256sum(line: &str) -> Result<ContentHash, String> {
    let line = line.strip_prefix('\\').unwrap_or(line);
    line.get(..64)
        .and_then(ContentHash::parse)
        .ok_or_else(|| format!("not a sha256sum line: {line:?}"))
}

/// Parses the output of [`crate::script::inspect`] for `count` paths.
pub(crate) fn parse_inspection(output: &[u8], count: usize, contents: bool, nonce: &str) -> Result<Inspected, String> {
    let output = after_begin(output, nonce)?;
    let mut reader = Reader { bytes: output, at: 0 };
    if reader.peek_starts_with(b"LOCKED ") {
        let line = reader.text_line()?;
        return Ok(Inspected::Locked(line["LOCKED ".len()..].to_owned()));
    }
    if let Some(folder) = symlinked(&reader) {
        return Ok(Inspected::Symlinked(folder));
    }
    let mut pending_post = None;
    if reader.peek_starts_with(b"P\n") {
        reader.take(2)?;
        let list = reader.until(format!("\nP-{nonce}\n").as_bytes())?;
        let mut paths = Vec::new();
        for entry in list.split(|byte| *byte == 0).filter(|entry| !entry.is_empty()) {
            let text = std::str::from_utf8(entry).map_err(|_| "a pending path is not UTF-8".to_owned())?;
            paths.push(NodePath::parse(text).map_err(|err| err.to_string())?);
        }
        pending_post = Some(paths);
    }
    let mut journal = None;
    if reader.peek_starts_with(b"J\n") {
        reader.take(2)?;
        journal = Some(reader.until(format!("\nJ-{nonce}\n").as_bytes())?.to_vec());
    }
    // Links and folders, in the order of their paths.
    let mut links = Vec::new();
    let mut folders = Vec::new();
    loop {
        if reader.peek_starts_with(b"L ") {
            let line = reader.text_line()?;
            let size: usize = line[2..]
                .trim()
                .parse()
                .map_err(|_| format!("bad link line {line:?}"))?;
            let target = reader.take(size)?;
            let target = String::from_utf8(target.to_vec()).map_err(|_| "a link target is not UTF-8".to_owned())?;
            if reader.take(1)? != b"\n" {
                return Err("a link target ends without a newline".to_owned());
            }
            links.push(target);
        } else if reader.peek_starts_with(b"D ") {
            let line = reader.text_line()?;
            folders.push(parse_stat(&line[2..])?);
        } else {
            break;
        }
    }
    let mut links = links.into_iter();
    let mut folders = folders.into_iter();
    let classes = reader.text_line()?;
    let classes = classes
        .strip_prefix("C ")
        .ok_or_else(|| format!("expected the kinds of the paths, got {classes:?}"))?;
    if classes.len() != count {
        return Err(format!("{} kinds for {count} paths", classes.len()));
    }
    let regular = classes.bytes().filter(|class| *class == b'F').count();
    let mut stats = Vec::with_capacity(regular);
    for _ in 0..regular {
        stats.push(parse_stat(reader.text_line()?)?);
    }
    let mut hashes = Vec::with_capacity(regular);
    for _ in 0..regular {
        hashes.push(parse_sha256sum(reader.text_line()?)?);
    }
    let mut bodies = Vec::with_capacity(regular);
    if contents {
        for (stat, hash) in stats.iter().zip(&hashes) {
            let size = usize::try_from(stat.size).map_err(|err| err.to_string())?;
            let body = reader.take(size)?;
            if ContentHash::of(body) != *hash {
                return Err("a file changed while it was read; try again".to_owned());
            }
            bodies.push(body.to_vec());
        }
    }
    let end = reader.text_line()?;
    if end != format!("END-{nonce}") {
        return Err(format!("expected the end marker, got {end:?}"));
    }
    let mut regular_files = stats.into_iter().zip(hashes);
    let mut bodies = bodies.into_iter();
    let mut files = Vec::with_capacity(count);
    let mut file_contents = Vec::with_capacity(count);
    for class in classes.bytes() {
        match class {
            b'F' => {
                let (stat, hash) = regular_files.next().ok_or("fewer stat lines than files")?;
                files.push(LiveFile::File(stat.with_hash(hash)));
                file_contents.push(bodies.next());
            }
            b'L' => {
                files.push(LiveFile::Symlink(links.next().ok_or("fewer link targets than links")?));
                file_contents.push(None);
            }
            b'D' => {
                let stat = folders.next().ok_or("fewer folder stat lines than folders")?;
                files.push(LiveFile::Directory(DirStat {
                    mode: stat.mode,
                    uid: stat.uid,
                    gid: stat.gid,
                    owner: stat.owner,
                    group: stat.group,
                }));
                file_contents.push(None);
            }
            b'M' => {
                files.push(LiveFile::Missing);
                file_contents.push(None);
            }
            b'O' => {
                files.push(LiveFile::Other);
                file_contents.push(None);
            }
            b'U' => {
                files.push(LiveFile::Unreadable);
                file_contents.push(None);
            }
            other => return Err(format!("unknown kind {:?}", other as char)),
        }
    }
    Ok(Inspected::Done(Inspection {
        files,
        contents: if contents { file_contents } else { Vec::new() },
        pending_post,
        journal,
    }))
}

/// Parses the output of [`crate::script::find`]: NUL-separated paths, `root` removed.
pub(crate) fn parse_found(output: &[u8], root: &str, nonce: &str) -> Result<Vec<NodePath>, String> {
    let output = after_begin(output, nonce)?;
    let root = root.trim_end_matches('/');
    let mut paths = Vec::new();
    for entry in output.split(|byte| *byte == 0).filter(|entry| !entry.is_empty()) {
        let Ok(text) = std::str::from_utf8(entry) else {
            continue; // pacha's paths are UTF-8; other files cannot be tracked
        };
        let Some(inside) = text.strip_prefix(root) else {
            return Err(format!("{text:?} is outside the node's root"));
        };
        let inside = if inside.is_empty() { "/" } else { inside };
        paths.push(NodePath::parse(inside).map_err(|err| err.to_string())?);
    }
    paths.sort();
    Ok(paths)
}

/// What an apply snippet reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AppliedStep {
    pub scripts: Vec<ScriptRun>,
    pub placed: bool,
    pub placed_stats: Vec<StatLine>,
    /// The file (its index in the step) whose `validate` refused it: status and output.
    pub refused: Option<(usize, i32, Vec<u8>)>,
    /// `Some(incomplete)` when a failing post script or health check put the node back.
    pub reverted: Option<bool>,
    /// The post scripts run again after that.
    pub after_revert: Vec<ScriptRun>,
    /// Whether the snippet ran to its end.
    pub done: bool,
}

/// Parses the output of [`crate::script::apply`]; `script_ids` names the step's scripts in
/// run order, `files` is how many files the step places.
pub(crate) fn parse_applied(
    output: &[u8],
    script_ids: &[String],
    files: usize,
    nonce: &str,
) -> Result<AppliedStep, String> {
    let output = after_begin(output, nonce)?;
    let mut reader = Reader { bytes: output, at: 0 };
    let mut applied = AppliedStep::default();
    let done = format!("DONE-{nonce}");
    while !reader.at_end() {
        let line = reader.text_line()?;
        if let Some(record) = line.strip_prefix("S ") {
            let fields: Vec<&str> = record.split(' ').collect();
            let [index, status, size] = fields.as_slice() else {
                return Err(format!("bad script record {line:?}"));
            };
            let index: usize = index.parse().map_err(|_| format!("bad script record {line:?}"))?;
            let status: i32 = status.parse().map_err(|_| format!("bad script record {line:?}"))?;
            let size: usize = size.trim().parse().map_err(|_| format!("bad script record {line:?}"))?;
            let id = script_ids
                .get(index)
                .ok_or_else(|| format!("unknown script {index}"))?
                .clone();
            let output = reader.take(size)?.to_vec();
            let run = ScriptRun { id, status, output };
            if applied.reverted.is_some() {
                applied.after_revert.push(run);
            } else {
                applied.scripts.push(run);
            }
        } else if let Some(flag) = line.strip_prefix("REVERTED ") {
            applied.reverted = Some(flag.trim() != "0");
        } else if let Some(record) = line.strip_prefix("V ") {
            let bad = || format!("bad validation record {line:?}");
            let fields: Vec<&str> = record.split(' ').collect();
            let [index, status, size] = fields.as_slice() else {
                return Err(bad());
            };
            let index: usize = index.parse().map_err(|_| bad())?;
            let status: i32 = status.parse().map_err(|_| bad())?;
            let size: usize = size.trim().parse().map_err(|_| bad())?;
            if index >= files {
                return Err(bad());
            }
            let output = reader.take(size)?.to_vec();
            applied.refused = Some((index, status, output));
        } else if line == format!("AWAIT-{nonce}") {
            // Confirm or revert: the node waited for pacha's answer here.
        } else if line == "PLACED" {
            applied.placed = true;
        } else if line == "A" {
            for _ in 0..files {
                applied.placed_stats.push(parse_stat(reader.text_line()?)?);
            }
        } else if line == done {
            applied.done = true;
        } else {
            return Err(format!("unexpected line {line:?}"));
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH_A: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

    #[test]
    fn parses_an_inspection() {
        let output = format!(
            "Welcome to web1!\nBEGIN-n1\nP\n/etc/a\0/etc/b c\0\nP-n1\nJ\nfiles:\n\nJ-n0\n\nJ-n1\nL 9\n../a\nb  c\nD 2750:0:4:4096:root:adm\nC FMLFOD\n644:0:0:6:root:root\n4755:1000:27:3:alice:sudo\n{HASH_A}  /r/etc/a\n\\{}  /r/etc/we\\nird\nEND-n1\n",
            ContentHash::of(b"abc")
        );
        let Inspected::Done(inspection) = parse_inspection(output.as_bytes(), 6, false, "n1").unwrap() else {
            panic!()
        };
        assert_eq!(inspection.pending_post.as_ref().unwrap().len(), 2);
        assert_eq!(inspection.pending_post.as_ref().unwrap()[1].as_str(), "/etc/b c");
        assert_eq!(
            inspection.journal.as_deref(),
            Some(&b"files:\n\nJ-n0\n"[..]),
            "the journal ends at this push's marker"
        );
        assert!(
            matches!(&inspection.files[0], LiveFile::File(stat) if stat.mode == Mode::FILE && stat.owner == "root" && stat.sha256.to_string() == HASH_A)
        );
        assert_eq!(inspection.files[1], LiveFile::Missing);
        assert_eq!(
            inspection.files[2],
            LiveFile::Symlink("../a\nb  c".into()),
            "a target is read byte for byte"
        );
        let LiveFile::File(second) = &inspection.files[3] else {
            panic!()
        };
        assert_eq!(
            (second.mode.to_string().as_str(), second.uid, second.group.as_str()),
            ("4755", 1000, "sudo")
        );
        assert_eq!(inspection.files[4], LiveFile::Other);
        assert!(
            matches!(&inspection.files[5], LiveFile::Directory(dir) if dir.mode.to_string() == "2750" && dir.group == "adm")
        );
    }

    #[test]
    fn parses_contents_and_checks_them() {
        let output = format!("BEGIN-n\nC F\n644:0:0:6:root:root\n{HASH_A}  /x\nhello\nEND-n\n");
        let Inspected::Done(inspection) = parse_inspection(output.as_bytes(), 1, true, "n").unwrap() else {
            panic!()
        };
        assert_eq!(inspection.contents, [Some(b"hello\n".to_vec())]);
        let tampered = format!("BEGIN-n\nC F\n644:0:0:6:root:root\n{HASH_A}  /x\nHELLO\nEND-n\n");
        assert!(
            parse_inspection(tampered.as_bytes(), 1, true, "n")
                .unwrap_err()
                .contains("changed while")
        );
    }

    #[test]
    fn reports_lock_and_refuses_truncation() {
        assert_eq!(
            parse_inspection(b"BEGIN-n\nLOCKED pacha push by bob@admin (pid 4)\n", 3, false, "n").unwrap(),
            Inspected::Locked("pacha push by bob@admin (pid 4)".into())
        );
        assert!(parse_inspection(b"BEGIN-n\nC MF\n", 2, false, "n").is_err());
        assert!(parse_inspection(b"BEGIN-n\nC M\nEND-other\n", 1, false, "n").is_err());
        assert!(parse_inspection(b"BEGIN-n\nC MM\nEND-n\n", 1, false, "n").is_err());
        let silent = parse_inspection(b"", 1, false, "n").unwrap_err();
        assert!(silent.contains("no answer"), "{silent}");
        let chatty = parse_inspection(b"sh: 1: Syntax error\n", 1, false, "n").unwrap_err();
        assert!(chatty.contains("Syntax error"), "{chatty}");
    }

    #[test]
    fn parses_found_files_under_the_root() {
        let found = parse_found(b"motd\nBEGIN-n\n/srv/n1/etc/b\0/srv/n1/etc/a c\0", "/srv/n1", "n").unwrap();
        assert_eq!(
            found,
            [NodePath::parse("/etc/a c").unwrap(), NodePath::parse("/etc/b").unwrap()]
        );
        assert_eq!(
            parse_found(b"BEGIN-n\n/etc/x\0", "/", "n").unwrap(),
            [NodePath::parse("/etc/x").unwrap()]
        );
        assert!(parse_found(b"BEGIN-n\n/other/x\0", "/srv/n1", "n").is_err());
    }

    #[test]
    fn parses_apply_records() {
        let output = b"BEGIN-n\nS 0 0 6\nhello\nPLACED\nA\n600:0:0:3:root:root\nS 1 4 0\n";
        let ids = vec!["pre/a/1".to_owned(), "post/b/2".to_owned()];
        let applied = parse_applied(output, &ids, 1, "n").unwrap();
        assert_eq!(applied.scripts[0].output, b"hello\n");
        assert_eq!(applied.scripts[1].status, 4);
        assert_eq!(applied.scripts[1].id, "post/b/2");
        assert!(applied.placed && !applied.done);
        assert_eq!(applied.placed_stats[0].mode.to_string(), "0600");
        let done = parse_applied(b"BEGIN-n\nDONE-n\n", &[], 0, "n").unwrap();
        assert!(done.done);
        assert!(parse_applied(b"BEGIN-n\nS 0 0 10\nshort", &ids, 0, "n").is_err());
        assert!(parse_applied(b"BEGIN-n\ngarbage\n", &ids, 0, "n").is_err());
    }
}
