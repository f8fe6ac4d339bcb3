//! The documentation holds together: every relative link in README.md,
//! docs/*.md and bindings/README.md names a file that exists (and, for a
//! `#fragment` into a markdown file, a heading of that file), and every page
//! of docs/ can be reached by links from README.md.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::util::repo_file;

/// The repository root, normalized (no `..`), so paths compare as keys.
fn root() -> PathBuf {
    normalize(&repo_file(""))
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The markdown files the test reads: README.md, every docs/*.md page and
/// the bindings' README.
fn pages() -> Vec<PathBuf> {
    let root = root();
    let mut pages = vec![root.join("README.md"), root.join("bindings/README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The lines of `text` outside fenced code blocks, with their numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            lines.push((n + 1, line));
        }
    }
    lines
}

/// `line` without its inline code spans' contents (a `](` inside code is
/// not a link).
fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    for c in line.chars() {
        if c == '`' {
            code = !code;
        } else if !code {
            out.push(c);
        }
    }
    out
}

/// The targets of the inline links `[text](target)` of `text`, with their
/// line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in prose(text) {
        let line = without_code(line);
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push((n, after[..end].trim().to_owned()));
            rest = &after[end..];
        }
    }
    found
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-`
/// and `_` dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of the headings of `text` (a repeated heading gets `-1`,
/// `-2`, … as on GitHub).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for (_, line) in prose(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            let base = slug(&line[hashes..]);
            let count = seen.entry(base.clone()).or_insert(0);
            anchors.insert(if *count == 0 { base.clone() } else { format!("{base}-{count}") });
            *count += 1;
        }
    }
    anchors
}

/// Where a link of `page` to `target` leads: the file (normalized) and the
/// fragment; `None` for a link off the repository (a URL).
fn resolve(page: &Path, target: &str) -> Option<(PathBuf, Option<String>)> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, fragment) = match target.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment.to_owned())),
        None => (target, None),
    };
    let file = if path.is_empty() { page.to_path_buf() } else { normalize(&page.parent()?.join(path)) };
    Some((file, fragment))
}

#[test]
fn every_relative_link_in_the_docs_names_an_existing_file_and_heading() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = fs::read_to_string(&page).unwrap();
        for (line, target) in links(&text) {
            let Some((file, fragment)) = resolve(&page, &target) else { continue };
            checked += 1;
            let shown = format!("{}:{line}: `{target}`", page.strip_prefix(root()).unwrap().display());
            if !file.exists() {
                broken.push(format!("{shown}: no such file {}", file.display()));
                continue;
            }
            if let Some(fragment) = fragment.filter(|_| file.extension().is_some_and(|e| e == "md")) {
                let headings = anchors(&fs::read_to_string(&file).unwrap());
                if !headings.contains(&fragment) {
                    broken.push(format!("{shown}: no heading `#{fragment}` in {}", file.display()));
                }
            }
        }
    }
    assert!(checked > 50, "the docs' links were found ({checked} checked)");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_docs_page_is_reachable_from_the_readme_through_the_index() {
    let root = root();
    let index = root.join("docs/README.md");
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        links(&readme).iter().any(|(_, t)| resolve(&root.join("README.md"), t).is_some_and(|(f, _)| f == index)),
        "README.md links to docs/README.md"
    );
    let mut reached = BTreeSet::from([index.clone()]);
    let mut queue = VecDeque::from([index]);
    while let Some(page) = queue.pop_front() {
        for (_, target) in links(&fs::read_to_string(&page).unwrap()) {
            if let Some((file, _)) = resolve(&page, &target) {
                if file.parent() == Some(root.join("docs").as_path()) && file.exists() && reached.insert(file.clone()) {
                    queue.push_back(file);
                }
            }
        }
    }
    let unreached: Vec<_> = pages()
        .into_iter()
        .filter(|p| p.parent() == Some(root.join("docs").as_path()) && !reached.contains(p))
        .map(|p| p.display().to_string())
        .collect();
    assert!(unreached.is_empty(), "docs pages no link leads to from docs/README.md: {unreached:?}");
}

#[test]
fn the_link_reader_finds_links_outside_code_and_github_anchors() {
    let text = "# Top `x`: y\n[a](a.md) and `[b](b.md)`\n```\n[c](c.md)\n# not a heading\n```\n## Top `x`: y\n";
    assert_eq!(links(text), vec![(2, "a.md".to_owned())]);
    assert_eq!(anchors(text), BTreeSet::from(["top-x-y".to_owned(), "top-x-y-1".to_owned()]));
    assert_eq!(slug("`any_available` strategies"), "any_available-strategies");
}
