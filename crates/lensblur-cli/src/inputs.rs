//! Expands command-line inputs (files, directories, quoted globs) into a deterministic list of
//! photos, each with the base folder its output mirrors from.
//!
//! Rules, chosen so a batch never trips over the files that sit next to photos:
//! * A file named on the command line is always a candidate (it fails if it is not a photo).
//! * A file found by a directory walk or a glob is classified by **content**: the first bytes are
//!   sniffed for the JPEG/PNG/WebP magic numbers the decoder trusts. A file whose content is not an
//!   image but whose *name* says `.jpg/.jpeg/.png/.webp` is kept as a candidate, so a damaged photo
//!   fails visibly instead of being ignored; anything else (`notes.txt`, `.xmp` sidecars, RAW files)
//!   is counted as unsupported and ignored.
//! * Hidden entries (name starting with `.`: `.DS_Store`, our own `.lensblur-*.tmp` temp files)
//!   are skipped in walks.
//! * Globs are expanded by us (quote them), `*` stays within one folder, `**` crosses folders,
//!   and matching ignores case (`*.jpg` finds `IMG_0001.JPG`).
//! * Order: command-line order, then sorted by file name within each folder; a file reached twice
//!   is kept once.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use globset::GlobBuilder;
use lensblur::io::Format;

/// One photo to process.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Path as found (the walk root or glob base joined with the relative path).
    pub path: PathBuf,
    /// Folder the output tree mirrors from (the directory or glob base given; a named file's parent).
    pub base: PathBuf,
}

/// The result of expanding the inputs.
#[derive(Debug, Default)]
pub struct Expanded {
    /// Photos to process, in order.
    pub candidates: Vec<Candidate>,
    /// Files found by walks or globs that are not photos (ignored, counted).
    pub unsupported: Vec<PathBuf>,
    /// Inputs that could not be read at all (missing file, unreadable folder, empty glob), with
    /// the reason; reported as failures.
    pub missing: Vec<(PathBuf, String)>,
    /// Folders not descended into because `--recursive` was not given.
    pub subdirs_skipped: usize,
}

/// Characters that make an argument a glob pattern rather than a path.
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// Expands `inputs`. `exclude` are paths never taken as inputs (the output folder, the report, the
/// contact sheet), compared after canonicalisation.
pub fn expand(inputs: &[PathBuf], recursive: bool, exclude: &[PathBuf]) -> Expanded {
    let exclude: Vec<PathBuf> = exclude
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    let mut out = Expanded::default();
    let mut seen = HashSet::new();
    let mut push = |out: &mut Expanded, c: Candidate| {
        let key = c.path.canonicalize().unwrap_or_else(|_| c.path.clone());
        if seen.insert(key) {
            out.candidates.push(c);
        }
    };
    for input in inputs {
        if input.is_file() {
            let base = input.parent().map(Path::to_path_buf).unwrap_or_default();
            push(
                &mut out,
                Candidate {
                    path: input.clone(),
                    base,
                },
            );
        } else if input.is_dir() {
            let depth = if recursive { usize::MAX } else { 1 };
            walk(
                input,
                depth,
                &exclude,
                &|_| true,
                &mut out,
                &mut |out, path| {
                    push(
                        out,
                        Candidate {
                            path,
                            base: input.clone(),
                        },
                    )
                },
            );
        } else if let Some(text) = input.to_str().filter(|s| is_glob(s)) {
            let (base, pattern) = split_glob(text);
            let glob = match GlobBuilder::new(&pattern)
                .literal_separator(true)
                .case_insensitive(true)
                .build()
            {
                Ok(g) => g.compile_matcher(),
                Err(e) => {
                    out.missing
                        .push((input.clone(), format!("bad glob pattern: {e}")));
                    continue;
                }
            };
            let depth = if pattern.contains("**") {
                usize::MAX
            } else {
                pattern.split('/').count()
            };
            let before = out.candidates.len() + out.unsupported.len();
            let root = if base.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                base.clone()
            };
            let matches = |p: &Path| glob.is_match(p.strip_prefix(&root).unwrap_or(p));
            walk(
                &root,
                depth,
                &exclude,
                &matches,
                &mut out,
                &mut |out, path| {
                    let path = match path.strip_prefix(&root) {
                        Ok(rel) if base.as_os_str().is_empty() => rel.to_path_buf(),
                        _ => path,
                    };
                    push(
                        out,
                        Candidate {
                            path,
                            base: base.clone(),
                        },
                    )
                },
            );
            if out.candidates.len() + out.unsupported.len() == before {
                out.missing
                    .push((input.clone(), "the pattern matched no files".into()));
            }
        } else {
            out.missing
                .push((input.clone(), "no such file or directory".into()));
        }
    }
    out
}

/// Splits `dir/sub/**/*.jpg` into the literal base `dir/sub` and the pattern `**/*.jpg`.
fn split_glob(text: &str) -> (PathBuf, String) {
    let path = Path::new(text);
    let mut base = PathBuf::new();
    let mut rest: Vec<String> = Vec::new();
    for comp in path.components() {
        let s = comp.as_os_str().to_string_lossy();
        if rest.is_empty() && !is_glob(&s) {
            base.push(comp);
        } else {
            rest.push(match comp {
                Component::RootDir => String::new(),
                _ => s.into_owned(),
            });
        }
    }
    if rest.is_empty() {
        // No wildcard component (cannot happen for a glob, kept for safety): match the name.
        let name = base
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        base.pop();
        return (base, name);
    }
    (base, rest.join("/"))
}

/// Walks `root` to `depth`, sorted by name, skipping hidden entries and excluded paths; of the
/// files `accept` takes, every photo-like one goes to `found`, every other to `out.unsupported`.
fn walk(
    root: &Path,
    depth: usize,
    exclude: &[PathBuf],
    accept: &dyn Fn(&Path) -> bool,
    out: &mut Expanded,
    found: &mut dyn FnMut(&mut Expanded, PathBuf),
) {
    let mut it = walkdir::WalkDir::new(root)
        .max_depth(depth)
        .sort_by_file_name()
        .into_iter();
    loop {
        let entry = match it.next() {
            None => break,
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                let path = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| root.into());
                out.missing.push((path, format!("cannot read: {e}")));
                continue;
            }
        };
        let hidden = entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.');
        let is_dir = entry.file_type().is_dir();
        if hidden
            || (!exclude.is_empty()
                && entry
                    .path()
                    .canonicalize()
                    .is_ok_and(|c| exclude.iter().any(|x| c.starts_with(x))))
        {
            if is_dir {
                it.skip_current_dir();
            }
            continue;
        }
        if is_dir {
            if entry.depth() == depth && depth == 1 {
                out.subdirs_skipped += 1;
            }
            continue;
        }
        let path = entry.into_path();
        if !path.is_file() || !accept(&path) {
            continue;
        }
        if looks_like_photo(&path) {
            found(out, path);
        } else {
            out.unsupported.push(path);
        }
    }
}

/// Content sniff (first 16 bytes), with a name-based escape so damaged photos are not ignored.
fn looks_like_photo(path: &Path) -> bool {
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| {
            let mut n = 0;
            while n < head.len() {
                let k = f.read(&mut head[n..])?;
                if k == 0 {
                    break;
                }
                n += k;
            }
            Ok(n)
        })
        .unwrap_or(0);
    Format::sniff(&head[..n]).is_some() || lensblur::io::format_from_path(path).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_glob_at_the_first_wildcard_component() {
        assert_eq!(
            split_glob("shoot/day1/**/*.jpg"),
            (PathBuf::from("shoot/day1"), "**/*.jpg".to_string())
        );
        assert_eq!(split_glob("*.png"), (PathBuf::new(), "*.png".to_string()));
        assert_eq!(
            split_glob("a/b*/c.jpg"),
            (PathBuf::from("a"), "b*/c.jpg".to_string())
        );
    }

    #[test]
    fn expands_dirs_and_globs_in_order_and_sniffs_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/deeper")).expect("mkdir");
        let jpeg = [0xFFu8, 0xD8, 0xFF, 0xE0, 0, 0];
        for name in ["b.jpg", "a.png", "sub/c.jpg", "sub/deeper/d.jpg", "noext"] {
            std::fs::write(d.join(name), jpeg).expect("write");
        }
        std::fs::write(d.join("notes.txt"), b"hello").expect("write");
        std::fs::write(d.join("broken.jpg"), b"not really").expect("write");
        std::fs::write(d.join(".hidden.jpg"), jpeg).expect("write");

        let flat = expand(&[d.to_path_buf()], false, &[]);
        let names: Vec<_> = flat
            .candidates
            .iter()
            .map(|c| c.path.strip_prefix(d).expect("rel").to_path_buf())
            .collect();
        // Content decides: `noext` is a JPEG; `broken.jpg` is kept because of its name.
        assert_eq!(
            names,
            ["a.png", "b.jpg", "broken.jpg", "noext"].map(PathBuf::from)
        );
        assert_eq!(flat.unsupported, vec![d.join("notes.txt")]);
        assert_eq!(flat.subdirs_skipped, 1);

        let deep = expand(&[d.to_path_buf()], true, &[d.join("sub/deeper")]);
        assert_eq!(deep.candidates.len(), 5, "{:?}", deep.candidates);
        assert!(deep.candidates.iter().all(|c| c.base == d));

        let pattern = d.join("**/*.jpg");
        let globbed = expand(&[pattern], false, &[]);
        let names: Vec<_> = globbed
            .candidates
            .iter()
            .map(|c| c.path.strip_prefix(d).expect("rel").to_path_buf())
            .collect();
        assert_eq!(
            names,
            ["b.jpg", "broken.jpg", "sub/c.jpg", "sub/deeper/d.jpg"].map(PathBuf::from)
        );
        let none = expand(&[d.join("*.gif")], false, &[]);
        assert_eq!(none.missing.len(), 1);
        // The same file twice is kept once.
        let twice = expand(&[d.join("a.png"), d.to_path_buf()], false, &[]);
        assert_eq!(twice.candidates.len(), 4);
        assert_eq!(twice.candidates[0].base, d);
    }
}
