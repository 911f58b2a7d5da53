//! Every relative link in the Markdown documentation leads somewhere: the file exists and, when
//! the link names a heading (`#anchor`), the file has that heading (as GitHub names anchors).
//! The library's `docs/` pages are also its rustdoc (module `guide`), where a relative link
//! would break: they have none, and each is included there.

use std::path::{Path, PathBuf};

/// The library's long-form pages, included in its rustdoc by `src/guide.rs`.
const GUIDE: &str = "crates/temporal-lambda-worker/docs";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The documents a reader follows links through.
fn documents() -> Vec<PathBuf> {
    let root = repo_root();
    let mut documents = vec![
        root.join("README.md"),
        root.join("crates/lambda-local/README.md"),
    ];
    for folder in ["docs", GUIDE, "bench"] {
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                documents.push(path);
            }
        }
    }
    documents
}

/// The lines outside fenced code blocks (the fences included neither).
fn prose_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut in_code = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            return false;
        }
        !in_code
    })
}

/// The targets of the `[text](target)` links outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose_lines(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                found.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    found
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    prose_lines(text)
        .filter(|line| line.starts_with('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_relative_link_in_the_docs_leads_to_a_file_and_heading_that_exist() {
    let mut broken = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        for link in links(&text) {
            if is_absolute(&link) {
                continue;
            }
            let (file, heading) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                document.clone()
            } else {
                document.parent().unwrap().join(file)
            };
            let name = document
                .strip_prefix(repo_root())
                .unwrap_or(&document)
                .display()
                .to_string();
            if !target.exists() {
                broken.push(format!("{name}: {link}: no such file"));
            } else if !heading.is_empty() {
                let target_text = std::fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&target_text).iter().any(|a| a == heading) {
                    broken.push(format!("{name}: {link}: no such heading"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

fn is_absolute(link: &str) -> bool {
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| link.starts_with(scheme))
}

#[test]
fn the_guide_pages_have_no_relative_links_and_are_all_in_the_rustdoc() {
    let guide_rs =
        std::fs::read_to_string(repo_root().join("crates/temporal-lambda-worker/src/guide.rs"))
            .unwrap();
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(repo_root().join(GUIDE)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !guide_rs.contains(&format!("include_str!(\"../docs/{name}\")")) {
            problems.push(format!("{name}: not included in src/guide.rs"));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for link in links(&text) {
            if !is_absolute(&link) {
                problems.push(format!(
                    "{name}: {link}: a relative link breaks on docs.rs; name the page instead"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn anchors_are_named_as_github_names_them() {
    assert_eq!(
        anchor(" Deadlines, the buffer, and long activities"),
        "deadlines-the-buffer-and-long-activities"
    );
    assert_eq!(
        anchor("The local serverless environment (`lambda-local`)"),
        "the-local-serverless-environment-lambda-local"
    );
    assert_eq!(
        links("see [a](b.md#c) and [d](https://e)"),
        ["b.md#c", "https://e"]
    );
}
