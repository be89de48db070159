//! Safe unpacking of a decrypted recording (a zip from the agent, or a tar from the balancer's
//! spool import): every entry must lie under `<format>/<recordID>/`, be a plain file or folder
//! (links and devices are refused), and stay within the size limits. Any violation refuses the
//! whole recording, before anything reaches the playback folders.

use std::io::{Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a zip or tar archive: {0}")]
    Format(String),
    #[error("entry {0:?} escapes the recording's folders")]
    Path(String),
    #[error("entry {0:?} is a link or a special file")]
    Link(String),
    #[error("entry {0:?} is larger than allowed")]
    EntryTooLarge(String),
    #[error("the recording is larger than allowed")]
    TooLarge,
    #[error("no <format>/<recordID>/metadata.xml")]
    NoMetadata,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub entry: u64,
    pub total: u64,
}

/// Unpacks `archive` into `into` (which must not exist); returns the formats found.
pub fn unpack(
    archive: &Path,
    into: &Path,
    record_id: &str,
    limits: Limits,
) -> Result<Vec<String>, UnpackError> {
    std::fs::create_dir_all(into)?;
    let mut file = std::fs::File::open(archive)?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic)?;
    file.rewind()?;
    let mut total = 0u64;
    if n == 4 && &magic == b"PK\x03\x04" {
        let mut zip = zip::ZipArchive::new(file).map_err(|e| UnpackError::Format(e.to_string()))?;
        for i in 0..zip.len() {
            let mut entry = zip
                .by_index(i)
                .map_err(|e| UnpackError::Format(e.to_string()))?;
            let name = entry.name().to_owned();
            if entry.is_symlink() {
                return Err(UnpackError::Link(name));
            }
            let target = target(into, &name, record_id)?;
            if entry.is_dir() {
                std::fs::create_dir_all(&target)?;
                continue;
            }
            copy(&mut entry, &target, &name, limits, &mut total)?;
        }
    } else {
        let mut tar = tar::Archive::new(file);
        for entry in tar
            .entries()
            .map_err(|e| UnpackError::Format(e.to_string()))?
        {
            let mut entry = entry.map_err(|e| UnpackError::Format(e.to_string()))?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            let target = target(into, &name, record_id)?;
            if kind.is_dir() {
                std::fs::create_dir_all(&target)?;
            } else if kind.is_file() {
                copy(&mut entry, &target, &name, limits, &mut total)?;
            } else if kind.is_pax_global_extensions()
                || kind.is_pax_local_extensions()
                || kind.is_gnu_longname()
            {
                continue;
            } else {
                return Err(UnpackError::Link(name));
            }
        }
    }
    let mut formats = Vec::new();
    for format in std::fs::read_dir(into)?.flatten() {
        if format.path().join(record_id).join("metadata.xml").is_file() {
            formats.push(format.file_name().to_string_lossy().into_owned());
        }
    }
    formats.sort();
    if formats.is_empty() {
        return Err(UnpackError::NoMetadata);
    }
    Ok(formats)
}

/// Where entry `name` goes: it must be `<format>/<recordID>[/...]` of plain components.
fn target(into: &Path, name: &str, record_id: &str) -> Result<PathBuf, UnpackError> {
    let path = Path::new(name);
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(p) => parts.push(p.to_owned()),
            Component::CurDir => {}
            _ => return Err(UnpackError::Path(name.to_owned())),
        }
    }
    if parts.len() < 2 || parts[1] != record_id || name.contains('\\') {
        return Err(UnpackError::Path(name.to_owned()));
    }
    Ok(parts.iter().fold(into.to_owned(), |p, c| p.join(c)))
}

fn copy(
    reader: &mut impl Read,
    target: &Path,
    name: &str,
    limits: Limits,
    total: &mut u64,
) -> Result<(), UnpackError> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut out = std::fs::File::create(target)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut written = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        written += n as u64;
        *total += n as u64;
        if written > limits.entry {
            return Err(UnpackError::EntryTooLarge(name.to_owned()));
        }
        if *total > limits.total {
            return Err(UnpackError::TooLarge);
        }
        out.write_all(&buf[..n])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    const LIMITS: Limits = Limits {
        entry: 1 << 20,
        total: 2 << 20,
    };

    fn zip_with(
        entries: &[(&str, &[u8])],
        symlink: Option<(&str, &str)>,
    ) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut zip = zip::ZipWriter::new(file.reopen().unwrap());
        for (name, data) in entries {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(data).unwrap();
        }
        if let Some((name, to)) = symlink {
            zip.add_symlink(name, to, SimpleFileOptions::default())
                .unwrap();
        }
        zip.finish().unwrap();
        file
    }

    fn run(file: &tempfile::NamedTempFile) -> Result<Vec<String>, UnpackError> {
        let dir = tempfile::tempdir().unwrap();
        unpack(file.path(), &dir.path().join("out"), "r1", LIMITS)
    }

    #[test]
    fn unpacks_formats_of_the_recording() {
        let zip = zip_with(
            &[
                ("presentation/r1/metadata.xml", b"<recording/>"),
                ("presentation/r1/video/webcams.webm", b"data"),
                ("podcast/r1/metadata.xml", b"<recording/>"),
            ],
            None,
        );
        assert_eq!(run(&zip).unwrap(), ["podcast", "presentation"]);
    }

    #[test]
    fn refuses_traversal_links_other_recordings_and_oversize() {
        for bad in [
            "../evil",
            "presentation/r1/../../evil",
            "/etc/passwd",
            "presentation/r2/x",
            "x",
        ] {
            let zip = zip_with(
                &[("presentation/r1/metadata.xml", b"<r/>"), (bad, b"x")],
                None,
            );
            assert!(matches!(run(&zip), Err(UnpackError::Path(_))), "{bad}");
        }
        let zip = zip_with(
            &[("presentation/r1/metadata.xml", b"<r/>")],
            Some(("presentation/r1/link", "/etc/passwd")),
        );
        assert!(matches!(run(&zip), Err(UnpackError::Link(_))));
        let big = vec![0u8; (1 << 20) + 1];
        let zip = zip_with(&[("presentation/r1/big", &big)], None);
        assert!(matches!(run(&zip), Err(UnpackError::EntryTooLarge(_))));
        let part = vec![0u8; 900 << 10];
        let zip = zip_with(
            &[
                ("presentation/r1/a", &part),
                ("presentation/r1/b", &part),
                ("presentation/r1/c", &part),
            ],
            None,
        );
        assert!(matches!(run(&zip), Err(UnpackError::TooLarge)));
        let zip = zip_with(&[("presentation/r1/slides.svg", b"<svg/>")], None);
        assert!(matches!(run(&zip), Err(UnpackError::NoMetadata)));
    }

    #[test]
    fn reads_scalelite_tarballs_and_refuses_their_links() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut tar = tar::Builder::new(file.reopen().unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "presentation/r1/metadata.xml", &b"<r/>"[..])
            .unwrap();
        tar.finish().unwrap();
        drop(tar);
        assert_eq!(run(&file).unwrap(), ["presentation"]);

        let file = tempfile::NamedTempFile::new().unwrap();
        let mut tar = tar::Builder::new(file.reopen().unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        tar.append_link(&mut header, "presentation/r1/metadata.xml", "/etc/passwd")
            .unwrap();
        tar.finish().unwrap();
        drop(tar);
        assert!(matches!(run(&file), Err(UnpackError::Link(_))));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Everything `out` holds, as paths relative to it.
        fn written(out: &Path) -> Vec<PathBuf> {
            let mut found = Vec::new();
            let mut stack = vec![out.to_path_buf()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        stack.push(path.clone());
                    }
                    found.push(path);
                }
            }
            found
        }

        fn unpacked(bytes: &[u8]) -> (Result<Vec<String>, UnpackError>, tempfile::TempDir) {
            let dir = tempfile::tempdir().unwrap();
            let archive = dir.path().join("archive");
            std::fs::write(&archive, bytes).unwrap();
            let result = unpack(&archive, &dir.path().join("out"), "r1", LIMITS);
            (result, dir)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn arbitrary_bytes_never_panic_or_escape(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let (_, dir) = unpacked(&bytes);
                let out = dir.path().join("out");
                for path in written(&out) {
                    prop_assert!(path.starts_with(&out));
                }
            }

            #[test]
            fn damaged_zips_never_panic_or_escape(
                names in proptest::collection::vec("[a-z./]{1,24}", 1..4),
                flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            ) {
                // Names the zip writer itself refuses (duplicates once normalised) are left out.
                let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                for name in &names {
                    if zip.start_file(name.as_str(), SimpleFileOptions::default()).is_ok() {
                        zip.write_all(b"data").unwrap();
                    }
                }
                let mut bytes = zip.finish().unwrap().into_inner();
                for (at, value) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] ^= value;
                }
                let (result, dir) = unpacked(&bytes);
                let out = dir.path().join("out");
                for path in written(&out) {
                    prop_assert!(path.starts_with(&out));
                }
                if let Ok(formats) = result {
                    prop_assert!(formats.iter().all(|f| !f.contains(['/', '.'])));
                }
            }

            #[test]
            fn tar_entries_outside_the_recording_are_refused(name in "(\\.\\./|/|[a-z]{1,5}/)[a-z./]{0,20}") {
                let mut tar = tar::Builder::new(Vec::new());
                let mut header = tar::Header::new_gnu();
                header.set_size(4);
                header.set_mode(0o644);
                // set_path refuses `..`; write the raw name as a hostile tool would.
                let raw = name.as_bytes();
                let len = raw.len().min(99);
                header.as_old_mut().name[..len].copy_from_slice(&raw[..len]);
                header.set_cksum();
                tar.append(&header, &b"data"[..]).unwrap();
                let bytes = tar.into_inner().unwrap();
                let (result, dir) = unpacked(&bytes);
                let out = dir.path().join("out");
                for path in written(&out) {
                    prop_assert!(path.starts_with(&out));
                }
                if !name.starts_with(|c: char| c.is_ascii_lowercase()) || name.contains("..") {
                    prop_assert!(result.is_err(), "{name:?} was accepted");
                }
            }
        }
    }
}
