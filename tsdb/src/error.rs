//! The crate's one error type.
//!
//! Section decoders report *what* is wrong and *where* (section name, byte offset); the block
//! layer wraps those errors in [`Error::Block`] so that every message that reaches an operator
//! names the block and the file ("read index of block 01H...: corrupt series at offset 64: ...").

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading or writing blocks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named path.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done ("open", "read", "write", "rename", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Bytes that do not form a valid structure.
    #[error("corrupt {section} at offset {offset}: {detail}")]
    Corrupt {
        /// The structure being decoded ("series", "postings", "xor chunk", ...).
        section: &'static str,
        /// Byte offset of the structure (within its file, or within the slice when unknown).
        offset: u64,
        /// What exactly is wrong.
        detail: String,
    },
    /// A checksum did not match.
    #[error(
        "checksum mismatch in {section} at offset {offset}: stored {stored:#010x}, computed {computed:#010x}"
    )]
    Checksum {
        /// The structure whose CRC failed.
        section: &'static str,
        /// Byte offset of the structure.
        offset: u64,
        /// CRC stored in the file.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// A format version this crate does not read.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// Which format ("index", "chunks", "meta.json", ...).
        what: &'static str,
        /// The version found.
        version: i64,
    },
    /// A chunk encoding this crate does not decode.
    #[error("unsupported chunk encoding {encoding}")]
    UnsupportedEncoding {
        /// The encoding byte.
        encoding: u8,
    },
    /// An error inside one file of one block.
    #[error("{op} {file} of block {block}")]
    Block {
        /// What was being done ("read", "write", "open").
        op: &'static str,
        /// File name relative to the block directory ("index", "chunks/000001", "meta.json").
        file: String,
        /// The block's ULID (or directory name when it is not a ULID).
        block: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// meta.json or a marker file that is not valid JSON of the expected shape.
    #[error("decode {file}")]
    Json {
        /// "meta.json", "deletion-mark.json", ...
        file: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A series selector that does not parse.
    #[error("parse selector {selector:?}: {detail}")]
    InvalidSelector {
        /// The selector text.
        selector: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A regular expression in a matcher that does not compile.
    #[error("compile regex {pattern:?}")]
    InvalidRegex {
        /// The pattern as given by the user.
        pattern: String,
        /// The regex error.
        #[source]
        source: Box<regex::Error>,
    },
    /// Data this crate can carry but not transform (e.g. overlapping native-histogram chunks,
    /// whose samples it does not decode, in a merge).
    #[error("unsupported: {what}")]
    Unsupported {
        /// What could not be done.
        what: String,
    },
    /// Work stopped because the caller asked it to (shutdown).
    #[error("cancelled")]
    Cancelled,
    /// A caller broke a writer's ordering or size contract.
    #[error("invalid input to {writer}: {detail}")]
    InvalidInput {
        /// The writer ("index writer", "xor appender", ...).
        writer: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(section: &'static str, offset: u64, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            section,
            offset,
            detail: detail.into(),
        }
    }

    /// Wrap this error as having happened in `file` of `block`.
    pub fn in_block(
        self,
        op: &'static str,
        block: impl Into<String>,
        file: impl Into<String>,
    ) -> Self {
        Error::Block {
            op,
            file: file.into(),
            block: block.into(),
            source: Box::new(self),
        }
    }

    /// The block whose file could not be read, when this error (or one it wraps) says so:
    /// the compactor marks such a block instead of retrying it forever.
    pub fn unreadable_block(&self) -> Option<&str> {
        match self {
            Error::Block {
                op: "read", block, ..
            } => Some(block),
            Error::Block { source, .. } => source.unreadable_block(),
            _ => None,
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
