//! Every document a comment or a README points to is in the repository, with the section it
//! names.
//!
//! Comments cite the repository's own docs as `docs/<file>.md#<anchor>` (the anchor is the
//! heading as GitHub renders it: lower case, spaces as `-`, punctuation dropped); markdown files
//! link with relative paths. Both are checked here against the files and their headings, so a
//! renamed heading or a removed file fails a test instead of leaving a dangling pointer. The
//! out-of-repo spec and design notes the code was first written against (`spec/<file>.md §n`,
//! `design §n`) must not come back: every `§` and `spec/<file>.md` in a `.rs` or `.md` file is
//! refused. Lives in `workspace-hack`, the one crate with no code of its own and no heavy
//! dependencies, next to the other whole-workspace check.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// Directories never scanned: build output, installed JavaScript, git's own files.
const SKIPPED_DIRS: [&str; 3] = ["target", "node_modules", ".git"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` and `.md` file of the repository, sorted so failures list in a stable order.
fn source_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_str()) {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") || name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The anchor GitHub gives a heading: lower case, letters, digits, `_` and `-` kept, spaces
/// turned into `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c),
            _ => None,
        })
        .collect()
}

/// Lines of a markdown text outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence {
            out.push((i + 1, line));
        }
    }
    out
}

/// The anchors of a markdown text's headings; a repeated heading gets `-1`, `-2`, … as on
/// GitHub.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose_lines(markdown) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim().trim_end_matches('#'));
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    out
}

fn is_anchor_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Every `docs/<file>.md` or `docs/<file>.md#<anchor>` in `text` that is not the tail of a
/// longer path (`../../docs/…` is a markdown link, checked as such), with its line number.
fn doc_citations(text: &str) -> Vec<(usize, String, Option<String>)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(at) = line[from..].find("docs/").map(|i| i + from) {
            from = at + "docs/".len();
            let before = line[..at].chars().next_back();
            if before.is_some_and(|c| is_anchor_char(c) || c == '/' || c == '.') {
                continue;
            }
            let rest = &line[from..];
            let name_len = rest
                .find(|c: char| !is_anchor_char(c))
                .unwrap_or(rest.len());
            let Some(after) = rest[name_len..]
                .strip_prefix(".md")
                .filter(|_| name_len > 0)
            else {
                continue;
            };
            let file = format!("{}.md", &rest[..name_len]);
            let anchor = after.strip_prefix('#').map(|a| {
                let len = a.find(|c: char| !is_anchor_char(c)).unwrap_or(a.len());
                a[..len].to_owned()
            });
            out.push((n + 1, file, anchor));
        }
    }
    out
}

/// Relative link targets `](path#anchor)` of a markdown text, outside code blocks.
fn markdown_links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text) {
        for part in line.split("](").skip(1) {
            let Some(end) = part.find(')') else { continue };
            let target = &part[..end];
            let is_url = target
                .split_once(':')
                .is_some_and(|(scheme, _)| scheme.chars().all(|c| c.is_ascii_alphabetic()));
            if !target.is_empty() && !target.contains(char::is_whitespace) && !is_url {
                out.push((n, target.to_owned()));
            }
        }
    }
    out
}

/// What is wrong with the citations and links of one file, one sentence each.
fn problems_in(root: &Path, file: &Path, text: &str) -> Vec<String> {
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let mut problems = Vec::new();
    let anchors_of = |path: &Path| -> Option<BTreeSet<String>> {
        fs::read_to_string(path).ok().map(|t| anchors(&t))
    };
    for (n, line) in text.lines().enumerate() {
        if line.contains('§') || (line.contains("spec/") && line.contains(".md")) {
            problems.push(format!(
                "{shown}:{}: cites a section of a document outside the repository (`§`, \
                 `spec/<file>.md`); cite `docs/<file>.md#<anchor>` and write the fact there: {}",
                n + 1,
                line.trim()
            ));
        }
    }
    for (n, name, anchor) in doc_citations(text) {
        let target = root.join("docs").join(&name);
        match (anchors_of(&target), anchor) {
            (None, _) => problems.push(format!("{shown}:{n}: `docs/{name}` does not exist")),
            (Some(found), Some(anchor)) if !found.contains(&anchor) => problems.push(format!(
                "{shown}:{n}: `docs/{name}` has no heading with anchor `#{anchor}`"
            )),
            _ => {}
        }
    }
    if file.extension().is_some_and(|e| e == "md") {
        for (n, target) in markdown_links(text) {
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let linked = if path.is_empty() {
                file.to_path_buf()
            } else {
                file.parent().unwrap_or(root).join(path)
            };
            if !linked.exists() {
                problems.push(format!(
                    "{shown}:{n}: link target `{target}` does not exist"
                ));
            } else if let (Some(anchor), true) =
                (anchor, linked.extension().is_some_and(|e| e == "md"))
            {
                if !anchors_of(&linked).is_some_and(|found| found.contains(anchor)) {
                    problems.push(format!(
                        "{shown}:{n}: link `{target}`: no heading with anchor `#{anchor}`"
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn every_docs_reference_in_code_and_markdown_names_an_existing_file_and_heading() {
    let root = repo_root();
    let files = source_files(&root);
    assert!(
        files.iter().any(|f| f.ends_with("docs/rules.md")),
        "the repository was not found from {}",
        root.display()
    );
    let mut citations = 0;
    let mut problems = Vec::new();
    // This file names the refused patterns itself.
    let this_file = Path::new("tests").join("doc_links").join("mod.rs");
    for file in files.iter().filter(|f| !f.ends_with(&this_file)) {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        citations += doc_citations(&text).len();
        problems.extend(problems_in(&root, file, &text));
    }
    assert!(
        citations > 50,
        "only {citations} `docs/…` citations found: the scan is broken"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_missing_heading_a_missing_file_and_an_out_of_repo_section_are_each_reported() {
    let root = repo_root();
    let file = root.join("crates/example.rs");
    let text = "//! (`docs/rules.md#cap-boundary`) is fine.\n\
                //! (`docs/rules.md#no-such-heading`)\n\
                //! (`docs/nowhere.md`)\n\
                //! (`spec/api.md` §4)\n\
                //! `crates/x/docs/local.md` is another crate's file, not ours.\n";
    let problems = problems_in(&root, &file, text);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].contains("crates/example.rs:4:"),
        "{problems:#?}"
    );
    assert!(problems[1].contains("no heading with anchor `#no-such-heading`"));
    assert!(problems[2].contains("`docs/nowhere.md` does not exist"));
}

#[test]
fn markdown_links_are_checked_relative_to_their_file() {
    let root = repo_root();
    let file = root.join("crates/store/README.md");
    let text = "[ok](../../docs/rules.md#start-height) [bad](../../docs/rules.md#nope)\n\
                [gone](missing.md) [web](https://example.com/a.md#x)\n\
                ```\n[in code](not/checked.md)\n```\n";
    let problems = problems_in(&root, &file, text);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].contains("`#nope`"), "{problems:#?}");
    assert!(problems[1].contains("`missing.md` does not exist"));
}

#[test]
fn anchors_follow_githubs_rendering_of_headings() {
    let md = "# Rules\n## V0 OP_RETURN\n## Expiry during unbonding_requested\n\
              ### Classification cost (cargo bench -p x)\n## Rules\n```\n# not a heading\n```\n";
    let found: Vec<String> = anchors(md).into_iter().collect();
    assert_eq!(
        found,
        [
            "classification-cost-cargo-bench--p-x",
            "expiry-during-unbonding_requested",
            "rules",
            "rules-1",
            "v0-op_return",
        ]
    );
}
