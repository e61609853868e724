//! A block directory: [`Block`] opens one for reading (series selection by matchers and time
//! range, sample iteration), [`BlockWriter`] writes one.
//!
//! Every error leaving this module names the block and the file
//! (`read index of block 01H...: corrupt series at offset 64: ...`).
//!
//! Writing is streaming and crash-safe: chunks go to segment files as series are added, only
//! postings stay in memory, everything is written under `<ULID>.tmp-for-creation/` with
//! meta.json last, then the directory is renamed into place.

use std::path::{Path, PathBuf};

use ulid::Ulid;

use crate::chunkenc::{AggrChunk, Chunk, Encoding};
use crate::chunks::{ChunkReader, ChunkRef, ChunkWriter};
use crate::index::postings::Postings;
use crate::index::{ChunkMeta, IndexReader, IndexWriter, SeriesRef};
use crate::labels::{Labels, Matcher};
use crate::meta::{BlockMeta, META_FILENAME};
use crate::tombstones::{TOMBSTONES_FILENAME, Tombstones};
use crate::{Error, Result};

/// File name of the index inside a block directory.
pub const INDEX_FILENAME: &str = "index";
/// Directory of the chunk segment files inside a block directory.
pub const CHUNKS_DIRNAME: &str = "chunks";
/// Suffix of a block directory still being written.
pub const TMP_FOR_CREATION_SUFFIX: &str = ".tmp-for-creation";

/// An open, immutable block.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    name: String,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
    tombstones: Tombstones,
}

impl Block {
    /// Open the block in `dir`: reads meta.json, the index's symbols and postings offset table,
    /// the chunk segment headers and the tombstones.
    pub fn open(dir: &Path) -> Result<Block> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let meta =
            BlockMeta::read_from_dir(dir).map_err(|e| e.in_block("read", &name, META_FILENAME))?;
        let index = IndexReader::open_file(&dir.join(INDEX_FILENAME))
            .map_err(|e| e.in_block("read", &name, INDEX_FILENAME))?;
        let chunks = ChunkReader::open_dir(&dir.join(CHUNKS_DIRNAME))
            .map_err(|e| e.in_block("read", &name, CHUNKS_DIRNAME))?;
        let tombstones = Tombstones::read_from_dir(dir)
            .map_err(|e| e.in_block("read", &name, TOMBSTONES_FILENAME))?;
        Ok(Block {
            dir: dir.to_path_buf(),
            name,
            meta,
            index,
            chunks,
            tombstones,
        })
    }

    /// The block directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory name (normally the ULID).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The block's meta.json.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The index reader.
    pub fn index(&self) -> &IndexReader {
        &self.index
    }

    /// The chunk reader.
    pub fn chunk_reader(&self) -> &ChunkReader {
        &self.chunks
    }

    /// The tombstones.
    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    fn index_error(&self, err: Error) -> Error {
        err.in_block("read", &self.name, INDEX_FILENAME)
    }

    /// Series matching `matchers` (Prometheus semantics).
    pub fn postings_for_matchers(&self, matchers: &[Matcher]) -> Result<Postings> {
        self.index
            .postings_for_matchers(matchers)
            .map_err(|e| self.index_error(e))
    }

    /// Labels and chunk metas of one series.
    pub fn series(&self, series_ref: SeriesRef) -> Result<(Labels, Vec<ChunkMeta>)> {
        self.index
            .series_with_labels(series_ref)
            .map_err(|e| self.index_error(e))
    }

    /// Read one chunk.
    pub fn chunk(&self, chunk_ref: ChunkRef) -> Result<Chunk> {
        self.chunks.chunk(chunk_ref).map_err(|e| {
            let file = format!(
                "{CHUNKS_DIRNAME}/{}",
                self.chunks.segment_name(chunk_ref.segment())
            );
            e.in_block("read", &self.name, file)
        })
    }

    /// Series matching `matchers` with at least one chunk overlapping `[mint, maxt]`, in label
    /// order, each with only its overlapping chunks.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<SeriesSet<'_>> {
        let postings = self.postings_for_matchers(matchers)?;
        Ok(SeriesSet {
            block: self,
            postings: postings.into_vec().into_iter(),
            mint,
            maxt,
        })
    }

    /// Samples of `series` in `[mint, maxt]`, minus deleted intervals, in time order. Like
    /// Prometheus 2.42's float iteration, it ends at the first non-float (histogram) chunk.
    pub fn samples<'a>(
        &'a self,
        series: &'a BlockSeries,
        mint: i64,
        maxt: i64,
    ) -> SampleIterator<'a> {
        SampleIterator {
            block: self,
            chunks: series.chunks.iter(),
            deleted: self.tombstones.get(series.series_ref),
            buffer: Vec::new(),
            position: 0,
            mint,
            maxt,
            done: false,
        }
    }
}

/// One selected series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSeries {
    /// Reference in the block's index.
    pub series_ref: SeriesRef,
    /// The series' labels.
    pub labels: Labels,
    /// Its chunks that overlap the selected time range.
    pub chunks: Vec<ChunkMeta>,
}

/// Iterator over the series a [`Block::select`] matched.
#[derive(Debug)]
pub struct SeriesSet<'a> {
    block: &'a Block,
    postings: std::vec::IntoIter<SeriesRef>,
    mint: i64,
    maxt: i64,
}

impl Iterator for SeriesSet<'_> {
    type Item = Result<BlockSeries>;

    fn next(&mut self) -> Option<Self::Item> {
        for series_ref in self.postings.by_ref() {
            let (labels, mut chunks) = match self.block.series(series_ref) {
                Ok(series) => series,
                Err(err) => return Some(Err(err)),
            };
            chunks.retain(|c| c.max_time >= self.mint && c.min_time <= self.maxt);
            let deleted = self.block.tombstones.get(series_ref);
            chunks.retain(|c| {
                !deleted
                    .iter()
                    .any(|&(a, b)| a <= c.min_time && c.max_time <= b)
            });
            if chunks.is_empty() {
                continue;
            }
            return Some(Ok(BlockSeries {
                series_ref,
                labels,
                chunks,
            }));
        }
        None
    }
}

/// Iterator over a series' float samples; see [`Block::samples`].
#[derive(Debug)]
pub struct SampleIterator<'a> {
    block: &'a Block,
    chunks: std::slice::Iter<'a, ChunkMeta>,
    deleted: &'a [(i64, i64)],
    buffer: Vec<(i64, f64)>,
    position: usize,
    mint: i64,
    maxt: i64,
    done: bool,
}

impl SampleIterator<'_> {
    fn load_next_chunk(&mut self) -> Result<bool> {
        let Some(meta) = self.chunks.next() else {
            return Ok(false);
        };
        let chunk = self.block.chunk(meta.chunk_ref)?;
        self.buffer.clear();
        self.position = 0;
        if chunk.encoding != Encoding::Xor {
            // 2.42 stops a series at its first histogram sample.
            return Ok(false);
        }
        let block = self.block;
        let wrap = |err: Error| {
            let file = format!(
                "{CHUNKS_DIRNAME}/{}",
                block.chunks.segment_name(meta.chunk_ref.segment())
            );
            err.in_block("read", block.name(), file)
        };
        for sample in chunk.xor_iter().map_err(wrap)? {
            let (t, v) = sample.map_err(wrap)?;
            if t < self.mint || t > self.maxt {
                continue;
            }
            if self.deleted.iter().any(|&(a, b)| a <= t && t <= b) {
                continue;
            }
            self.buffer.push((t, v));
        }
        Ok(true)
    }
}

impl Iterator for SampleIterator<'_> {
    type Item = Result<(i64, f64)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(&sample) = self.buffer.get(self.position) {
                self.position += 1;
                return Some(Ok(sample));
            }
            if self.done {
                return None;
            }
            match self.load_next_chunk() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
    }
}

/// A chunk to write, with its time range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesChunk {
    /// First sample timestamp.
    pub min_time: i64,
    /// Last sample timestamp (inclusive).
    pub max_time: i64,
    /// The chunk.
    pub chunk: Chunk,
}

/// Writes a new block. See the module header for the protocol.
#[derive(Debug)]
pub struct BlockWriter {
    parent: PathBuf,
    tmp_dir: PathBuf,
    name: String,
    meta: BlockMeta,
    chunks: ChunkWriter,
    index: IndexWriter,
    max_chunk_size: u64,
}

fn samples_in(chunk: &Chunk) -> u64 {
    match chunk.encoding {
        Encoding::Aggr => AggrChunk::decode(&chunk.data)
            .ok()
            .and_then(|aggr| {
                crate::chunkenc::AggrType::ALL
                    .iter()
                    .find_map(|t| aggr.get(*t).and_then(Chunk::num_samples))
            })
            .map_or(0, u64::from),
        _ => chunk.num_samples().map_or(0, u64::from),
    }
}

impl BlockWriter {
    /// Start writing the block described by `meta` (its ULID, time range, compaction and Thanos
    /// sections; stats are computed) under `parent_dir`. `symbols` must be sorted, unique and
    /// hold every label name and value that will be written.
    pub fn create(parent_dir: &Path, meta: BlockMeta, symbols: Vec<String>) -> Result<Self> {
        let name = meta.ulid.to_string();
        let tmp_dir = parent_dir.join(format!("{name}{TMP_FOR_CREATION_SUFFIX}"));
        let wrap = |file: &str| {
            let name = name.clone();
            let file = file.to_string();
            move |e: Error| e.in_block("write", name, file)
        };
        if tmp_dir.exists() {
            std::fs::remove_dir_all(&tmp_dir)
                .map_err(|err| Error::io("remove", &tmp_dir, err))
                .map_err(wrap(""))?;
        }
        std::fs::create_dir_all(&tmp_dir)
            .map_err(|err| Error::io("create", &tmp_dir, err))
            .map_err(wrap(""))?;
        let chunks =
            ChunkWriter::create(&tmp_dir.join(CHUNKS_DIRNAME)).map_err(wrap(CHUNKS_DIRNAME))?;
        let index = IndexWriter::create(&tmp_dir.join(INDEX_FILENAME), symbols)
            .map_err(wrap(INDEX_FILENAME))?;
        let mut meta = meta;
        meta.stats = Default::default();
        Ok(BlockWriter {
            parent: parent_dir.to_path_buf(),
            tmp_dir,
            name,
            meta,
            chunks,
            index,
            max_chunk_size: 0,
        })
    }

    /// The block's ULID.
    pub fn ulid(&self) -> Ulid {
        self.meta.ulid
    }

    /// Number of series added so far.
    pub fn num_series(&self) -> u64 {
        self.meta.stats.num_series
    }

    /// An upper estimate of the index file's size if the block were finished now.
    pub fn estimated_index_size(&self) -> u64 {
        self.index.estimated_size()
    }

    /// The meta the block will be written with (stats so far).
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// Add a series (labels strictly increasing across calls) with its chunks in time order.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[SeriesChunk]) -> Result<SeriesRef> {
        let data: Vec<Chunk> = chunks.iter().map(|c| c.chunk.clone()).collect();
        let refs = self
            .chunks
            .write_chunks(&data)
            .map_err(|e| e.in_block("write", &self.name, CHUNKS_DIRNAME))?;
        let metas: Vec<ChunkMeta> = chunks
            .iter()
            .zip(refs)
            .map(|(c, chunk_ref)| ChunkMeta {
                min_time: c.min_time,
                max_time: c.max_time,
                chunk_ref,
            })
            .collect();
        let series_ref = self
            .index
            .add_series(labels, &metas)
            .map_err(|e| e.in_block("write", &self.name, INDEX_FILENAME))?;
        self.meta.stats.num_series += 1;
        self.meta.stats.num_chunks += chunks.len() as u64;
        for c in chunks {
            self.meta.stats.num_samples += samples_in(&c.chunk);
            self.max_chunk_size = self.max_chunk_size.max(c.chunk.data.len() as u64 + 10);
        }
        Ok(series_ref)
    }

    /// Finish the files, write tombstones and meta.json (last), and rename the directory into
    /// place. Returns the block directory and its meta.
    pub fn finish(self) -> Result<(PathBuf, BlockMeta)> {
        let BlockWriter {
            parent,
            tmp_dir,
            name,
            mut meta,
            chunks,
            index,
            max_chunk_size,
        } = self;
        let wrap = |file: &'static str| {
            let name = name.clone();
            move |e: Error| e.in_block("write", name, file)
        };
        let max_series_size = index.max_series_size();
        let segments = chunks.finish().map_err(wrap(CHUNKS_DIRNAME))?;
        let index_size = index.finish().map_err(wrap(INDEX_FILENAME))?;
        Tombstones::default()
            .write_to_dir(&tmp_dir)
            .map_err(wrap(TOMBSTONES_FILENAME))?;
        if let Some(thanos) = meta.thanos.as_mut() {
            thanos.index_stats.series_max_size = max_series_size as i64;
            thanos.index_stats.chunk_max_size = max_chunk_size as i64;
            if !thanos.files.is_empty() || !thanos.segment_files.is_empty() {
                thanos.segment_files = segments.iter().map(|(n, _)| n.clone()).collect();
                let mut files: Vec<crate::meta::ThanosFile> = segments
                    .iter()
                    .map(|(n, size)| crate::meta::ThanosFile {
                        rel_path: format!("{CHUNKS_DIRNAME}/{n}"),
                        size_bytes: *size as i64,
                        hash: None,
                    })
                    .collect();
                files.push(crate::meta::ThanosFile {
                    rel_path: INDEX_FILENAME.into(),
                    size_bytes: index_size as i64,
                    hash: None,
                });
                files.push(crate::meta::ThanosFile {
                    rel_path: META_FILENAME.into(),
                    size_bytes: 0,
                    hash: None,
                });
                thanos.files = files;
            }
        }
        meta.write_to_dir(&tmp_dir).map_err(wrap(META_FILENAME))?;
        let final_dir = parent.join(&name);
        if final_dir.exists() {
            return Err(Error::io(
                "rename",
                &tmp_dir,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "block directory exists"),
            )
            .in_block("write", name, ""));
        }
        std::fs::rename(&tmp_dir, &final_dir)
            .map_err(|err| Error::io("rename", &tmp_dir, err).in_block("write", &name, ""))?;
        if let Ok(parent_dir) = std::fs::File::open(&parent) {
            let _ = parent_dir.sync_all();
        }
        Ok((final_dir, meta))
    }
}

/// A new ULID for a block created now.
pub fn new_ulid() -> Ulid {
    Ulid::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::XorAppender;
    use crate::dump::SampleFormatter;
    use crate::labels::parse_selector;

    const BLOCK: &str = "01M89TEE59XZBKFF6HB3W7MRMX";

    fn testdata() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/promtool-2.42")
    }

    fn dump(block: &Block, selector: &str, mint: i64, maxt: i64) -> String {
        let mut out = Vec::new();
        let matchers = parse_selector(selector).unwrap();
        for series in block.select(&matchers, mint, maxt).unwrap() {
            let series = series.unwrap();
            let mut formatter = SampleFormatter::new(&series.labels);
            for sample in block.samples(&series, mint, maxt) {
                let (t, v) = sample.unwrap();
                formatter.write(&mut out, t, v).unwrap();
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn dumps_like_promtool() {
        let block = Block::open(&testdata().join(BLOCK)).unwrap();
        let want = std::fs::read_to_string(testdata().join("dump.txt")).unwrap();
        assert_eq!(
            dump(&block, "{__name__=~'(?s:.*)'}", i64::MIN, i64::MAX),
            want
        );
        let partial = dump(&block, "foo", 1_700_000_000_001, 1_700_000_015_000);
        assert_eq!(partial.lines().count(), 2, "{partial}");
    }

    #[test]
    fn rewrite_with_reencoded_chunks_is_byte_identical() {
        let source_dir = testdata().join(BLOCK);
        let block = Block::open(&source_dir).unwrap();
        let out = tempfile::tempdir().unwrap();
        let symbols = block
            .index()
            .symbols()
            .iter()
            .map(|s| s.unwrap().to_string())
            .collect();
        let meta = BlockMeta::new(new_ulid(), block.meta().min_time, block.meta().max_time);
        let mut writer = BlockWriter::create(out.path(), meta, symbols).unwrap();
        for series_ref in block.index().all_postings().unwrap().iter() {
            let (labels, metas) = block.series(series_ref).unwrap();
            let chunks: Vec<SeriesChunk> = metas
                .iter()
                .map(|m| {
                    let chunk = block.chunk(m.chunk_ref).unwrap();
                    let mut app = XorAppender::new();
                    for s in chunk.xor_iter().unwrap() {
                        let (t, v) = s.unwrap();
                        app.append(t, v).unwrap();
                    }
                    SeriesChunk {
                        min_time: m.min_time,
                        max_time: m.max_time,
                        chunk: Chunk::new(Encoding::Xor, app.bytes()),
                    }
                })
                .collect();
            writer.add_series(&labels, &chunks).unwrap();
        }
        let (dir, meta) = writer.finish().unwrap();
        assert_eq!(meta.stats, block.meta().stats);
        for file in ["index", "chunks/000001", "tombstones"] {
            assert_eq!(
                std::fs::read(dir.join(file)).unwrap(),
                std::fs::read(source_dir.join(file)).unwrap(),
                "{file}"
            );
        }
        let names: Vec<String> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [meta.ulid.to_string()],
            "no temporary directory left"
        );
    }

    #[test]
    fn corruption_names_block_and_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(BLOCK);
        std::fs::create_dir_all(dir.join("chunks")).unwrap();
        for file in ["meta.json", "index", "tombstones", "chunks/000001"] {
            std::fs::copy(testdata().join(BLOCK).join(file), dir.join(file)).unwrap();
        }
        // Flip a bit inside the chunk data of the first series.
        let mut chunks = std::fs::read(dir.join("chunks/000001")).unwrap();
        chunks[20] ^= 4;
        std::fs::write(dir.join("chunks/000001"), &chunks).unwrap();
        let block = Block::open(&dir).unwrap();
        let series = block
            .select(&parse_selector("foo").unwrap(), i64::MIN, i64::MAX)
            .unwrap();
        let first = series.into_iter().next().unwrap().unwrap();
        let err = block
            .samples(&first, i64::MIN, i64::MAX)
            .find_map(Result::err)
            .unwrap();
        let message = err.to_string();
        assert!(
            message.contains(BLOCK) && message.contains("chunks/000001"),
            "{message}"
        );

        let mut index = std::fs::read(dir.join("index")).unwrap();
        index.truncate(index.len() - 3);
        std::fs::write(dir.join("index"), &index).unwrap();
        let err = Block::open(&dir).unwrap_err().to_string();
        assert_eq!(err, format!("read index of block {BLOCK}"));
    }
}
