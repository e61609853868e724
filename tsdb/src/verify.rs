//! Health checks of a block, for the compactor (every block it writes is checked before
//! upload) and `strata-tools bucket verify`: series in strictly increasing label order (so no
//! duplicate series), chunks of a series in time order, not overlapping, and inside the
//! block's time range; with `deep`, every chunk is read (CRC checked) and XOR chunks decoded.

use crate::Result;
use crate::block::Block;
use crate::chunkenc::Encoding;
use crate::labels::Labels;

/// What [`verify_block`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub series: u64,
    pub chunks: u64,
    /// One line per problem found.
    pub problems: Vec<String>,
}

/// Checks `block`. Errors are read failures of the index itself; everything else found is a
/// problem in the report.
pub fn verify_block(block: &Block, deep: bool) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let meta = block.meta();
    let mut last: Option<Labels> = None;
    for series_ref in block.index().all_postings()?.iter() {
        let (labels, chunks) = match block.series(series_ref) {
            Ok(series) => series,
            Err(err) => {
                report.problems.push(format!("series {series_ref}: {err}"));
                continue;
            }
        };
        report.series += 1;
        report.chunks += chunks.len() as u64;
        if let Some(previous) = &last {
            if previous == &labels {
                report.problems.push(format!("duplicate series {labels}"));
            } else if previous > &labels {
                report
                    .problems
                    .push(format!("series {labels} out of order after {previous}"));
            }
        }
        for (i, chunk) in chunks.iter().enumerate() {
            if chunk.min_time < meta.min_time || chunk.max_time >= meta.max_time {
                report.problems.push(format!(
                    "series {labels}: chunk [{}, {}] outside the block's range [{}, {})",
                    chunk.min_time, chunk.max_time, meta.min_time, meta.max_time
                ));
            }
            if i > 0 && chunk.min_time <= chunks[i - 1].max_time {
                report.problems.push(format!(
                    "series {labels}: chunk [{}, {}] out of order or overlapping [{}, {}]",
                    chunk.min_time,
                    chunk.max_time,
                    chunks[i - 1].min_time,
                    chunks[i - 1].max_time
                ));
            }
            if deep {
                match block.chunk(chunk.chunk_ref) {
                    Ok(data) if data.encoding == Encoding::Xor => {
                        let mut samples = Vec::new();
                        if let Err(err) = data
                            .xor_iter()
                            .and_then(|mut it| it.decode_into(&mut samples))
                        {
                            report.problems.push(format!("series {labels}: {err}"));
                        }
                    }
                    Ok(_) => {}
                    Err(err) => report.problems.push(format!("series {labels}: {err}")),
                }
            }
        }
        last = Some(labels);
    }
    if report.series != meta.stats.num_series && meta.stats.num_series != 0 {
        report.problems.push(format!(
            "meta.json says {} series, the index holds {}",
            meta.stats.num_series, report.series
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::tests::write_block;

    #[test]
    fn healthy_block_has_no_problems() {
        let dir = tempfile::tempdir().unwrap();
        let block = write_block(
            dir.path(),
            &vec![(
                Labels::from_pairs([("__name__", "up")]),
                (0..300).map(|i| (i * 1000, 1.0)).collect(),
            )],
        );
        let report = verify_block(&block, true).unwrap();
        assert_eq!((report.series, report.chunks), (1, 3));
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}
