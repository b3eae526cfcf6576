//! Opening a store, and saying in one line what went wrong when it cannot be read.
//!
//! A store that cannot be opened is not necessarily damaged: the process may have run out of file
//! descriptors, the file may belong to another user, or sit on a read-only mount. Each cause has
//! its own [`StoreError`] so the operator is told the real one. SQLite only says "unable to open
//! database file", so the cause is found by opening the file the way SQLite would.
//!
//! A finished store is in WAL mode with its `-wal` and `-shm` files removed. SQLite needs to
//! create `-shm` to read such a file, which a read-only directory forbids; with no `-wal` there is
//! nothing the file does not already hold, so it is then opened as `immutable`.

use super::integrity::{row_ok, select_sql};
use super::schema::{self, CAMPAIGN, READABLE_SCHEMA_VERSION, SCHEMA_VERSION};
use super::StoreError;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// SQLite's message, on one line.
pub(crate) fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

/// The cause of an I/O failure on the store file, as a store error.
pub(crate) fn from_io(path: &Path, e: std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => return StoreError::TooManyOpenFiles { path },
        Some(libc::EROFS) => return StoreError::ReadOnly { path, detail: "it is on a read-only file system".into() },
        _ => {}
    }
    if e.kind() == ErrorKind::PermissionDenied {
        return StoreError::PermissionDenied { path };
    }
    StoreError::Io { path, source: e }
}

/// Tries the access SQLite needs to `path` (read, or read and write) and says why it fails, if it does.
pub(crate) fn probe(path: &Path, write: bool) -> Result<(), StoreError> {
    std::fs::OpenOptions::new().read(true).write(write).open(path).map(drop).map_err(|e| from_io(path, e))
}

/// Maps an SQLite error on a store to its real cause. `probe` is what opening the file directly
/// says (`Ok` when it opens), consulted when SQLite could not open something.
pub(crate) fn classify(path: &Path, e: rusqlite::Error, probe: Result<(), StoreError>, reports: Option<&Path>) -> StoreError {
    let corrupt = |detail: String| StoreError::Corrupt { path: path.to_path_buf(), detail, reports: reports.map(Path::to_path_buf) };
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::NotADatabase => {
                StoreError::NotAStore { path: path.to_path_buf(), detail: "the file is not an SQLite database".into() }
            }
            ErrorCode::DatabaseCorrupt => corrupt(one_line(&e.to_string())),
            ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly | ErrorCode::SystemIoFailure => match probe {
                Err(cause) => cause,
                Ok(()) if f.code == ErrorCode::ReadOnly => {
                    StoreError::ReadOnly { path: path.to_path_buf(), detail: one_line(&e.to_string()) }
                }
                Ok(()) => StoreError::Sqlite { path: path.to_path_buf(), source: e },
            },
            _ => StoreError::Sqlite { path: path.to_path_buf(), source: e },
        },
        // a value of a type or range that this stressctl never writes
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => corrupt(format!("a stored value is not what was written ({})", one_line(&e.to_string()))),
        _ => StoreError::Sqlite { path: path.to_path_buf(), source: e },
    }
}

fn wal_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// `file:` URI of `path` opened as immutable (percent-encoded).
fn immutable_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Whether the directory of `path` forbids creating files (read-only mount, or no write permission).
fn dir_read_only(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call; access(2) only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
        return false;
    }
    matches!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EROFS | libc::EACCES | libc::EPERM))
}

/// Whether a read-only open failed because SQLite could not create the `-shm`/`-wal` files.
fn needs_shm(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if matches!(f.code, ErrorCode::CannotOpen | ErrorCode::ReadOnly))
}

/// The OS error behind the last failure of `conn` (0 when there was none).
fn last_errno(conn: &Connection) -> i32 {
    // SAFETY: the handle is valid while `conn` lives, and sqlite3_system_errno only reads the
    // connection's last OS error code.
    unsafe { rusqlite::ffi::sqlite3_system_errno(conn.handle()) }
}

fn open_read_only(path: &Path) -> Result<(Connection, i64), StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e, probe(path, false), None))?;
    let e = match conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)) {
        Ok(v) => return Ok((conn, v)),
        Err(e) => e,
    };
    // out of descriptors: said while the connection still holds its own (an EMFILE stays EMFILE)
    if let errno @ (libc::EMFILE | libc::ENFILE) = last_errno(&conn) {
        return Err(from_io(path, std::io::Error::from_raw_os_error(errno)));
    }
    if !(needs_shm(&e) && dir_read_only(path)) {
        return Err(classify(path, e, probe(path, false), None));
    }
    drop(conn);
    let wal = wal_path(path);
    if std::fs::metadata(&wal).map(|m| m.len() > 0).unwrap_or(false) {
        return Err(StoreError::ReadOnly {
            path: path.to_path_buf(),
            detail: format!(
                "its write-ahead log {} cannot be read without creating {}-shm, which this directory forbids; copy the run directory somewhere writable and read the copy",
                wal.display(),
                path.display()
            ),
        });
    }
    tracing::info!(target: "stressctl::store", "{}: its directory is read-only and it has no write-ahead log: reading it as immutable", path.display());
    let conn = Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)
        .map_err(|e| classify(path, e, probe(path, false), None))?;
    let v = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).map_err(|e| classify(path, e, probe(path, false), None))?;
    Ok((conn, v))
}

/// The schema version of an open store.
pub(crate) fn version_of(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// The reports directory recorded in the campaign row, when that row can be read and verifies.
pub(crate) fn recorded_output_dir(conn: &Connection) -> Option<PathBuf> {
    let sql = format!("{} LIMIT 1", select_sql(&CAMPAIGN));
    conn.query_row(&sql, [], |r| Ok(if row_ok(&CAMPAIGN, r)? { Some(PathBuf::from(r.get::<_, String>(9)?)) } else { None })).ok().flatten()
}

/// Opens an existing store: schema version and page structure (`PRAGMA quick_check`) checked.
/// The records themselves are verified as they are read ([`super::StoreReader`]).
pub fn open_checked(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    probe(path, !read_only)?;
    let (conn, version) = if read_only {
        open_read_only(path)?
    } else {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| classify(path, e, probe(path, true), None))?;
        let v =
            conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).map_err(|e| classify(path, e, probe(path, true), None))?;
        (conn, v)
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }
    let problems = {
        let mut st = conn.prepare("PRAGMA quick_check").map_err(|e| classify(path, e, Ok(()), None))?;
        let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(|e| classify(path, e, Ok(()), None))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| classify(path, e, Ok(()), None))?
    };
    if problems.first().map(String::as_str) != Some("ok") {
        // the full list goes to the log; the error line names the first problem
        let lines: Vec<&str> = problems.iter().flat_map(|p| p.lines()).filter(|l| !l.starts_with("*** in database")).collect();
        tracing::error!(target: "stressctl::store", "{}: PRAGMA quick_check found {} problems:\n{}", path.display(), lines.len(), lines.join("\n"));
        let first = lines.first().copied().unwrap_or("unknown problem");
        let more = if lines.len() > 1 { format!(" and {} more problems", lines.len() - 1) } else { String::new() };
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("damaged pages ({first}{more}; `sqlite3 {} 'PRAGMA integrity_check'` lists them)", path.display()),
            reports: recorded_output_dir(&conn),
        });
    }
    let has_campaign: Option<String> = conn
        .query_row("SELECT name FROM sqlite_master WHERE type='table' AND name='campaign'", [], |r| r.get(0))
        .optional()
        .map_err(|e| classify(path, e, Ok(()), None))?;
    if has_campaign.is_none() || version < 1 {
        return Err(StoreError::NotAStore { path: path.to_path_buf(), detail: "it has no campaign table".into() });
    }
    if version < SCHEMA_VERSION && !(read_only && version >= READABLE_SCHEMA_VERSION) {
        return Err(StoreError::OlderSchema { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }
    if !read_only {
        schema::pragmas(&conn).map_err(|e| classify(path, e, probe(path, true), None))?;
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_failure(code: i32, msg: &str) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(msg.into()))
    }

    fn os(errno: i32) -> std::io::Error {
        std::io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn open_failures_name_their_real_cause() {
        let p = Path::new("/x/store.sqlite");
        let cant_open = || sqlite_failure(rusqlite::ffi::SQLITE_CANTOPEN, "unable to open database file");
        let cases: Vec<(std::io::Error, &str)> = vec![
            (os(libc::EMFILE), "too many open files"),
            (os(libc::ENFILE), "too many open files"),
            (os(libc::EACCES), "permission denied"),
            (os(libc::EPERM), "permission denied"),
            (os(libc::EROFS), "read-only file system"),
        ];
        for (io, want) in cases {
            let e = classify(p, cant_open(), Err(from_io(p, io)), None);
            let msg = e.to_string();
            assert!(msg.contains(want), "{msg}");
            assert!(!msg.contains("corrupt") && !matches!(e, StoreError::Corrupt { .. } | StoreError::NotAStore { .. }), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
            assert!(!e.is_bad_input());
        }
        // SQLite could not open it, the file itself opens: an SQLite error, not "corrupt"
        let e = classify(p, cant_open(), Ok(()), None);
        assert!(matches!(e, StoreError::Sqlite { .. }), "{e:?}");
        // truly damaged or not a database
        let e = classify(p, sqlite_failure(rusqlite::ffi::SQLITE_CORRUPT, "database disk image is malformed"), Ok(()), None);
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
        assert!(!e.to_string().contains("unaffected"), "no reports dir known, no claim: {e}");
        let e = classify(p, sqlite_failure(rusqlite::ffi::SQLITE_CORRUPT, "malformed"), Ok(()), Some(Path::new("/srv/out/c1")));
        assert!(e.to_string().contains("/srv/out/c1 are unaffected"), "{e}");
        let e = classify(p, sqlite_failure(rusqlite::ffi::SQLITE_NOTADB, "file is not a database"), Ok(()), None);
        assert!(matches!(e, StoreError::NotAStore { .. }), "{e:?}");
    }

    #[test]
    fn io_errors_map_to_their_variant() {
        let p = Path::new("/x/store.sqlite");
        assert!(matches!(from_io(p, os(libc::EMFILE)), StoreError::TooManyOpenFiles { .. }));
        assert!(matches!(from_io(p, os(libc::EACCES)), StoreError::PermissionDenied { .. }));
        assert!(matches!(from_io(p, os(libc::EROFS)), StoreError::ReadOnly { .. }));
        assert!(matches!(from_io(p, os(libc::EIO)), StoreError::Io { .. }));
    }

    #[test]
    fn immutable_uris_are_escaped() {
        assert_eq!(immutable_uri(Path::new("/a b/c?d#e%.sqlite")), "file:/a%20b/c%3Fd%23e%25.sqlite?immutable=1");
    }

    #[test]
    fn sqlite_messages_become_one_line() {
        assert_eq!(one_line("*** in database main ***\nPage 5: never used\n\n"), "*** in database main ***; Page 5: never used");
    }
}
