//! A PromQL `Queryable` over a directory of local TSDB blocks (a data dir, or a FILESYSTEM
//! bucket), so `strata-tools promql query` can answer PromQL offline, the way the querier answers
//! it over StoreAPI.
//!
//! Each block's Thanos external labels are applied as a StoreAPI server applies them (matchers on
//! external labels are evaluated against them; series labels are extended, external wins).
//! Series with equal labels in several blocks become one series whose samples run through the
//! blocks in time order. Only chunk references are held per series; samples are decoded lazily.

use std::path::Path;

use anyhow::Context as _;
use strata_common::storeapi::external::{finalize_labels, matchers_for_store};
use strata_promql::storage::{Querier, Queryable, SampleIterator, SelectHints, SeriesSet};
use strata_promql::{Point, StorageSeries};
use strata_tsdb::block::{Block, BlockSeries};
use strata_tsdb::labels::{
    Labels as TsdbLabels, MatchType as TsdbMatchType, Matcher as TsdbMatcher,
};

/// The blocks of one directory, each with its external labels.
pub struct LocalBlocks {
    blocks: Vec<(Block, TsdbLabels)>,
}

impl LocalBlocks {
    /// Opens every block (a sub-directory with a meta.json) under `dir`. A block that cannot be
    /// opened is reported on stderr and skipped, so one bad block does not hide the rest.
    pub fn open(dir: &Path) -> anyhow::Result<LocalBlocks> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("read directory {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.join("meta.json").is_file())
            .collect();
        entries.sort();
        let mut blocks = Vec::with_capacity(entries.len());
        for path in entries {
            match Block::open(&path) {
                Ok(block) => {
                    let external = block
                        .meta()
                        .thanos
                        .as_ref()
                        .map(|thanos| TsdbLabels::from_pairs(thanos.labels.clone()))
                        .unwrap_or_default();
                    blocks.push((block, external));
                }
                Err(err) => eprintln!("warning: skipping block {}: {err}", path.display()),
            }
        }
        blocks.sort_by_key(|(block, _)| block.meta().min_time);
        Ok(LocalBlocks { blocks })
    }

    /// How many blocks were opened.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }
}

fn storage_error(err: impl std::error::Error + Send + Sync + 'static) -> strata_promql::Error {
    strata_promql::Error::Storage {
        source: Box::new(err),
    }
}

fn to_tsdb_matcher(matcher: &strata_promql::Matcher) -> strata_promql::Result<TsdbMatcher> {
    let kind = match matcher.match_type {
        strata_promql::MatchType::Equal => TsdbMatchType::Equal,
        strata_promql::MatchType::NotEqual => TsdbMatchType::NotEqual,
        strata_promql::MatchType::Regex => TsdbMatchType::Regex,
        strata_promql::MatchType::NotRegex => TsdbMatchType::NotRegex,
    };
    TsdbMatcher::new(kind, matcher.name.as_str(), matcher.value.as_str()).map_err(storage_error)
}

fn to_promql_labels(labels: &TsdbLabels) -> strata_promql::Labels {
    strata_promql::Labels::from_pairs(
        labels
            .iter()
            .map(|label| (label.name.as_str(), label.value.as_str())),
    )
}

impl Queryable for LocalBlocks {
    fn querier(&self, mint: i64, maxt: i64) -> strata_promql::Result<Box<dyn Querier + '_>> {
        Ok(Box::new(LocalQuerier {
            blocks: &self.blocks,
            mint,
            maxt,
        }))
    }
}

struct LocalQuerier<'a> {
    blocks: &'a [(Block, TsdbLabels)],
    mint: i64,
    maxt: i64,
}

/// One block's part of a selected series.
struct Part<'a> {
    block: &'a Block,
    series: BlockSeries,
}

impl Querier for LocalQuerier<'_> {
    fn select(
        &self,
        _sorted: bool,
        hints: &SelectHints,
        matchers: &[strata_promql::Matcher],
    ) -> strata_promql::Result<Box<dyn SeriesSet + '_>> {
        let (mint, maxt) = if hints.start != 0 || hints.end != 0 {
            (self.mint.max(hints.start), self.maxt.min(hints.end))
        } else {
            (self.mint, self.maxt)
        };
        let matchers = matchers
            .iter()
            .map(to_tsdb_matcher)
            .collect::<strata_promql::Result<Vec<_>>>()?;
        let mut selected: Vec<(TsdbLabels, Part<'_>)> = Vec::new();
        for (block, external) in self.blocks {
            let meta = block.meta();
            // Blocks are half-open [minTime, maxTime).
            if meta.max_time <= mint || meta.min_time > maxt {
                continue;
            }
            let Some(block_matchers) =
                matchers_for_store(external, &matchers).map_err(storage_error)?
            else {
                continue;
            };
            for series in block
                .select(&block_matchers, mint, maxt)
                .map_err(storage_error)?
            {
                let series = series.map_err(storage_error)?;
                let labels = finalize_labels(&series.labels, external, &[]);
                selected.push((labels, Part { block, series }));
            }
        }
        // Stable: parts of one series stay in block (time) order.
        selected.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Box::new(LocalSeriesSet {
            selected,
            next: 0,
            mint,
            maxt,
        }))
    }
}

struct LocalSeriesSet<'a> {
    selected: Vec<(TsdbLabels, Part<'a>)>,
    next: usize,
    mint: i64,
    maxt: i64,
}

impl SeriesSet for LocalSeriesSet<'_> {
    fn next_series(&mut self) -> strata_promql::Result<Option<StorageSeries<'_>>> {
        let start = self.next;
        let Some((labels, _)) = self.selected.get(start) else {
            return Ok(None);
        };
        let end = start
            + self.selected[start..]
                .iter()
                .take_while(|(other, _)| other == labels)
                .count();
        self.next = end;
        let parts = &self.selected[start..end];
        Ok(Some(StorageSeries::new(
            to_promql_labels(&parts[0].0),
            Box::new(MergedSamples {
                parts,
                current: 0,
                position: None,
                last_t: i64::MIN,
                mint: self.mint,
                maxt: self.maxt,
            }),
        )))
    }
}

/// The samples of one series across its blocks, in time order; a sample whose timestamp is not
/// after the previous one (an overlap between blocks) is skipped.
struct MergedSamples<'s, 'a> {
    parts: &'s [(TsdbLabels, Part<'a>)],
    current: usize,
    position: Option<strata_tsdb::block::SampleIterator<'s>>,
    last_t: i64,
    mint: i64,
    maxt: i64,
}

impl SampleIterator for MergedSamples<'_, '_> {
    fn next_sample(&mut self) -> strata_promql::Result<Option<Point>> {
        loop {
            let iter = match self.position.as_mut() {
                Some(iter) => iter,
                None => {
                    let Some((_, part)) = self.parts.get(self.current) else {
                        return Ok(None);
                    };
                    self.position
                        .insert(part.block.samples(&part.series, self.mint, self.maxt))
                }
            };
            match iter.next() {
                Some(Ok((t, v))) => {
                    if t > self.last_t {
                        self.last_t = t;
                        return Ok(Some(Point { t, v }));
                    }
                }
                Some(Err(err)) => return Err(storage_error(err)),
                None => {
                    self.position = None;
                    self.current += 1;
                }
            }
        }
    }
}
